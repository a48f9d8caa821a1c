"""Run settings: what train.py's flags become."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from monitor.data import DATASETS
from monitor.distribution import STRATEGIES, tf_config_task
from monitor.errors import MonitorError
from monitor.recipes import MODELS, recipe


@dataclass
class RunConfig:
    """One training run. `None` means "the model's reference recipe value"."""

    model: str
    dataset: str = "cifar10"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    val_split: float = 0.3
    seed: int = 42
    data_dir: str | None = None
    logdir: str = "logs"
    run_name: str | None = None
    limit: int | None = None
    early_stopping: int | None = None
    strategy: str = "default"
    # the monitoring suite
    suite: bool = True
    histograms: bool = True
    confusion_matrix: bool = True
    per_class: bool = True
    prediction_grid: bool = True
    pr_curves: bool = True
    every_n_epochs: int = 1
    grid_size: int = 18
    grid_columns: int = 6
    probability_images: int = 4
    confused_pairs: int = 5
    epochs_per_tag: int = 10
    mistakes: int = 64
    mistakes_grid: int = 12

    def resolved(self) -> RunConfig:
        """A validated copy with the recipe's defaults filled in (raises MonitorError)."""
        if self.model not in MODELS:
            raise MonitorError(f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.dataset not in DATASETS:
            raise MonitorError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        r = recipe(self.model)
        c = RunConfig(**asdict(self))
        c.epochs = r.epochs if c.epochs is None else c.epochs
        c.batch_size = r.batch_size if c.batch_size is None else c.batch_size
        c.learning_rate = r.learning_rate if c.learning_rate is None else c.learning_rate
        c.early_stopping = r.early_stopping if c.early_stopping is None else c.early_stopping
        checks = [
            ("--epochs", c.epochs, c.epochs >= 1, "a positive integer"),
            ("--batch-size", c.batch_size, c.batch_size >= 1, "a positive integer"),
            ("--learning-rate", c.learning_rate, c.learning_rate > 0, "a positive number"),
            ("--val-split", c.val_split, 0 < c.val_split < 1, "a fraction strictly between 0 and 1"),
            ("--seed", c.seed, c.seed >= 0, "a non-negative integer"),
            ("--limit", c.limit, c.limit is None or c.limit >= 1, "a positive integer"),
            ("--early-stopping", c.early_stopping, c.early_stopping >= 0, "0 (off) or a positive patience"),
            ("--every-n-epochs", c.every_n_epochs, c.every_n_epochs >= 1, "a positive integer"),
            ("--grid-size", c.grid_size, c.grid_size >= 0, "0 (off) or a positive integer"),
            ("--grid-columns", c.grid_columns, c.grid_columns >= 1, "a positive integer"),
            ("--probability-images", c.probability_images, c.probability_images >= 0,
             "0 (off) or a positive integer"),
            ("--confused-pairs", c.confused_pairs, c.confused_pairs >= 0, "0 (off) or a positive integer"),
            ("--mistakes", c.mistakes, c.mistakes >= 0, "0 (off) or a positive integer"),
            ("--mistakes-grid", c.mistakes_grid, c.mistakes_grid >= 0, "0 (off) or a positive integer"),
            ("--epochs-per-tag", c.epochs_per_tag, c.epochs_per_tag >= 0,
             "0 (one tag for all epochs) or a positive integer"),
        ]
        for flag, value, ok, expected in checks:
            if not ok:
                raise MonitorError(f"invalid {flag} {value}: expected {expected}")
        if c.strategy not in STRATEGIES:
            raise MonitorError(f"unknown --strategy {c.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if c.strategy == "multiworker":
            if tf_config_task() is None:
                raise MonitorError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                                   "process's task), set the same way on every worker; see README")
            if c.run_name is None:
                raise MonitorError("--strategy multiworker needs --run-name: every worker must name the "
                                   "same run directory (a timestamp would differ between them)")
        if c.run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", c.run_name):
            raise MonitorError(
                f"invalid --run-name {c.run_name!r}: use letters, digits, '.', '_' and '-' only"
            )
        return c

    def as_dict(self) -> dict:
        return asdict(self)
