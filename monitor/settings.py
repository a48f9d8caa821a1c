"""Run settings, the one source of train.py's flags and of the suite's options.

Each field carries its flag's help (and choices) in its metadata: `train.py` builds its
parser from these fields, `RunConfig.resolved()` checks them, and the callbacks take their
defaults and argument checks from `SuiteOptions`.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields

from monitor.data import CLASS_NAMES, DATASETS
from monitor.distribution import STRATEGIES, tf_config_task
from monitor.errors import MonitorError
from monitor.limits import EPOCHS_PER_TAG
from monitor.picture_budget import PICTURE_BUDGET
from monitor.recipes import MODELS, RECIPES, recipe

HEADS = ("auto", "single_label", "binary", "multi_label")  # SuiteOptions.head
POSITIVE = (lambda v: v >= 1, "a positive integer")
OFF_OR_POSITIVE = (lambda v: v >= 0, "0 (off) or a positive integer")


def setting(default, help: str, *, check=None, choices=None, metavar=None, cli: bool = True):
    """A dataclass field with its flag's help; `check`: (predicate, what is expected)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices,
                                            "metavar": metavar, "cli": cli})


def _recipe_values(attribute: str) -> str:
    """"baseline/dropout 31, tutorial 50, ...": a recipe attribute of every model, grouped."""
    groups: dict[object, list[str]] = {}
    for name, r in RECIPES.items():
        groups.setdefault(getattr(r, attribute), []).append(name)
    return ", ".join(f"{'/'.join(names)} {value}" for value, names in groups.items())


@dataclass(kw_only=True)
class SuiteOptions:
    """What the monitoring suite writes each epoch; shared by all its callbacks."""

    confusion_matrix: bool = setting(True, "confusion matrix images and the confused-pairs text")
    per_class: bool = setting(True, "per-class scalars and table")
    prediction_grid: bool = setting(True, "sample-prediction grid and probability images")
    pr_curves: bool = setting(True, "per-class PR curves")
    calibration: bool = setting(True, "calibration: the reliability diagram and ECE/MCE scalars")
    alarms: bool = setting(True, "alarms (overfitting, not learning, collapse, diverging, over-confident): "
                           "a console line, the `alerts` text, metrics.json's `alerts` and a report banner; "
                           "and the generalisation-gap scalars")
    explanations: bool = setting(True, "Grad-CAM heat maps of the most confident mistakes and the prediction "
                                 "grid: the explanations/ images, the dashboard's maps, a report section")
    every_n_epochs: int = setting(1, "write the suite every N epochs (epochs 1, 1+N, ...)", check=POSITIVE)
    picture_budget: float = setting(
        PICTURE_BUDGET, "share of the machine's CPU (its cores x the training time) the suite's pictures "
        "may take: an epoch gets its TensorBoard images while drawing stays within it, the first and last "
        "epoch always; every epoch's numbers and dashboard data are written whatever it is. "
        "0 = pictures every epoch",
        check=(lambda v: not isinstance(v, bool) and isinstance(v, int | float) and 0 <= v <= 1,
               "a number from 0 (pictures every epoch) to 1"), metavar="SHARE")
    grid_size: int = setting(18, "images in the prediction grid (0: none)", check=OFF_OR_POSITIVE)
    grid_columns: int = setting(6, "columns of the prediction grid", check=POSITIVE)
    probability_images: int = setting(4, "images shown beside their class-probability bars (0: none)",
                                      check=OFF_OR_POSITIVE)
    confused_pairs: int = setting(5, "most-confused class pairs listed each epoch (0: none)",
                                  check=OFF_OR_POSITIVE)
    epochs_per_tag: int = setting(
        EPOCHS_PER_TAG, "epochs per image/text/dashboard tag, so plain `tensorboard --logdir` serves "
        "every epoch (TensorBoard keeps 10 images per tag); 0 = one tag for all epochs",
        check=(lambda v: v >= 0, "0 (one tag for all epochs) or a positive integer"))
    mistakes: int = setting(64, "most confident mistakes kept per validation pass, for the dashboard "
                            "(0: none)", check=OFF_OR_POSITIVE)
    mistakes_grid: int = setting(12, "of those, shown in the mistakes/most_confident image (0: no image)",
                                 check=OFF_OR_POSITIVE)
    threshold: float = setting(
        0.5, "binary (one-unit) heads: predicted positive when p(positive) >= this",
        check=(lambda v: not isinstance(v, bool) and isinstance(v, int | float) and 0 < v < 1,
               "a number strictly between 0 and 1"), cli=False)
    head: str = setting(
        "auto", "the kind of classifier head: auto (read from the model: one unit = binary, C sigmoid "
        "units or a binary cross-entropy loss on C units = multi_label, else single_label), "
        "single_label (argmax), binary (one unit) or multi_label (C independent sigmoids, multi-hot targets)",
        check=(lambda v: v in HEADS, "one of " + ", ".join(HEADS)), choices=HEADS, cli=False)

    def validate(self) -> SuiteOptions:
        """Raise ValueError, Keras-style, for an out-of-range option; returns self."""
        for name, value, ok, _ in _failed_checks(self, SuiteOptions):
            if not ok:
                raise ValueError(f"Invalid value for argument `{name}`. Received: {name}={value}")
        return self

    def suite_options(self) -> SuiteOptions:
        """Just the suite's options (of a RunConfig, say)."""
        return SuiteOptions(**{f.name: getattr(self, f.name) for f in fields(SuiteOptions)})


def check_option(name: str, value) -> None:
    """ValueError, Keras-style, when `value` is not a valid `SuiteOptions.<name>`."""
    SuiteOptions(**{name: value}).validate()


@dataclass(kw_only=True)
class RunConfig(SuiteOptions):
    """One training run, as train.py's flags give it. `None` means "the model's recipe value"."""

    model: str = setting(MISSING, "reference model (docs/recipes.md); several (e.g. --model baseline "
                         "dropout) train one after another under one parent folder (--logdir/--run-name, "
                         "default compare-<time>) and end with a comparison", choices=MODELS)
    dataset: str = setting("cifar10", "data set; several train every model on each", choices=DATASETS)
    classes: list[str] | None = setting(
        None, "train on only these classes of the data set, in this order (e.g. --classes cat dog); "
        "two classes make a binary model: one sigmoid output unit, the first class negative",
        metavar="NAME")
    epochs: int | None = setting(None, f"epochs (default: the recipe's: {_recipe_values('epochs')})",
                                 check=POSITIVE)
    batch_size: int | None = setting(None, "global batch size, split across devices and workers under "
                                     f"--strategy (default: the recipe's: {_recipe_values('batch_size')})",
                                     check=POSITIVE)
    learning_rate: float | None = setting(
        None, f"learning rate of the recipe's optimiser (default: {_recipe_values('learning_rate')})",
        check=(lambda v: v > 0, "a positive number"))
    val_split: float = setting(0.3, "fraction of the training set held out for validation (stratified)",
                               check=(lambda v: 0 < v < 1, "a fraction strictly between 0 and 1"))
    seed: int = setting(42, "seed for split, shuffling and weights",
                        check=(lambda v: v >= 0, "a non-negative integer"))
    data_dir: str | None = setting(None, "folder with cifar10.npz / mnist.npz or the official files "
                                   "(default: $MONITOR_DATA_DIR, else Keras' download)")
    logdir: str = setting("logs", "where run directories go")
    run_name: str | None = setting(None, "run directory name (default: <dataset>-<model>-<time>); with "
                                   "several models or data sets, the parent folder's; an existing one is "
                                   "an error")
    limit: int | None = setting(None, "use only N training images (stratified), for quick runs",
                                check=POSITIVE, metavar="N")
    early_stopping: int | None = setting(
        None, "stop when val_loss has not improved for PATIENCE epochs, restoring the best weights; "
        f"0 = off (default: {_recipe_values('early_stopping')})",
        check=(lambda v: v >= 0, "0 (off) or a positive patience"), metavar="PATIENCE")
    strategy: str = setting("default", "tf.distribute strategy: mirrored = every local GPU; multiworker = "
                            "the cluster in TF_CONFIG (needs --run-name; only the chief writes)",
                            choices=STRATEGIES)
    suite: bool = setting(True, "the monitoring suite, leaving only Keras' TensorBoard callback (scalars, "
                          "histograms, graph)")
    histograms: bool = setting(True, "weight histograms")

    def resolved(self) -> RunConfig:
        """A validated copy with the recipe's defaults filled in (raises MonitorError)."""
        if self.model not in MODELS:
            raise MonitorError(f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.dataset not in DATASETS:
            raise MonitorError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        r = recipe(self.model)
        c = RunConfig(**asdict(self))
        for name in ("epochs", "batch_size", "learning_rate", "early_stopping"):
            if getattr(c, name) is None:
                setattr(c, name, getattr(r, name))
        for name, value, ok, expected in _failed_checks(c, RunConfig):
            if not ok:
                raise MonitorError(f"invalid {flag_name(name)} {value}: expected {expected}")
        c._check_strategy_and_name()
        c._check_classes()
        return c

    def _check_classes(self) -> None:
        if self.classes is None:
            return
        names = CLASS_NAMES[self.dataset]
        if (not isinstance(self.classes, list | tuple) or len(self.classes) < 2
                or len(set(self.classes)) != len(self.classes) or any(c not in names for c in self.classes)):
            listed = isinstance(self.classes, list | tuple)
            given = " ".join(map(str, self.classes)) if listed else self.classes
            raise MonitorError(f"invalid --classes {given}: give at least 2 different classes of "
                               f"{self.dataset} ({', '.join(names)})")
        self.classes = list(self.classes)

    @property
    def binary(self) -> bool:
        """Two classes chosen with --classes: a one-unit sigmoid head."""
        return self.classes is not None and len(self.classes) == 2

    def _check_strategy_and_name(self) -> None:
        if self.strategy not in STRATEGIES:
            raise MonitorError(f"unknown --strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.strategy == "multiworker":
            if tf_config_task() is None:
                raise MonitorError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                                   "process's task), set the same way on every worker; see README")
            if self.run_name is None:
                raise MonitorError("--strategy multiworker needs --run-name: every worker must name the "
                                   "same run directory (a timestamp would differ between them)")
        if self.run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.run_name):
            raise MonitorError(
                f"invalid --run-name {self.run_name!r}: use letters, digits, '.', '_' and '-' only"
            )

    def as_dict(self) -> dict:
        """The flags, the run's own first, then the suite's (as metrics.json records them)."""
        values = asdict(self)
        suite = {f.name for f in fields(SuiteOptions)}
        return {k: v for k, v in values.items() if k not in suite} | {
            k: v for k, v in values.items() if k in suite}


def flag_name(name: str) -> str:
    """`--every-n-epochs` for `every_n_epochs`; booleans on by default are `--no-<name>`."""
    f = next((f for f in fields(RunConfig) if f.name == name), None)
    dashed = name.replace("_", "-")
    return f"--no-{dashed}" if f is not None and f.default is True else f"--{dashed}"


def cli_fields() -> list:
    """RunConfig's fields in flag order: the run's own, then the suite's."""
    suite = {f.name for f in fields(SuiteOptions)}
    flags = [f for f in fields(RunConfig) if f.metadata.get("cli", True)]  # cli=False: no flag (yet)
    return [f for f in flags if f.name not in suite] + [f for f in flags if f.name in suite]


def _failed_checks(settings, cls):
    """(name, value, passes, expected) for every field of `cls` with a check and a value."""
    for f in fields(cls):
        check = f.metadata.get("check")
        value = getattr(settings, f.name)
        if check is None or value is None:
            continue
        predicate, expected = check
        kind = int | float if "float" in str(f.type) else str if str(f.type) == "str" else int
        ok = isinstance(value, kind) and not isinstance(value, bool) and predicate(value)
        yield f.name, value, ok, expected
