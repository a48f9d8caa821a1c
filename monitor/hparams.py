"""Hyperparameters and final metrics of a run, for TensorBoard's HParams dashboard.

Written with the `hparams` summary API directly (TensorBoard's `hp.KerasCallback`
subclasses tf-keras' callback, which Keras 3 models do not take). Every run writes,
into its own directory: the experiment config (the same for every run, so the
dashboard finds one), its session (`hp.hparams`: the values, trial id = run name)
and its final metrics as `final/*` scalars, which the dashboard reads as the
session's metrics.

```
python -m monitor.hparams logs/run1 logs/run2   # runs finished before this version
```
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile

from tensorboard.plugins.hparams import api as hp

from monitor import summaries
from monitor.data import DATASETS
from monitor.distribution import STRATEGIES
from monitor.recipes import MODELS, recipe
from monitor.runfiles import model_file, record
from monitor.writers import SummaryWriters

METRICS = {  # tag -> display name
    "final/val_accuracy": "validation accuracy",
    "final/val_loss": "validation loss",
    "final/test_accuracy": "test accuracy",
    "final/test_loss": "test loss",
    "final/test_macro_f1": "test macro F1",
    "final/epochs_run": "epochs run",
}
HPARAMS = [
    hp.HParam("model", hp.Discrete(list(MODELS))),
    hp.HParam("dataset", hp.Discrete(list(DATASETS))),
    hp.HParam("dropout_rates", display_name="dropout rates"),
    hp.HParam("optimizer", hp.Discrete(["adam", "rmsprop"])),
    hp.HParam("learning_rate", hp.RealInterval(0.0, 10.0), display_name="learning rate"),
    hp.HParam("batch_size", hp.IntInterval(1, 2**20), display_name="batch size"),
    hp.HParam("epochs", hp.IntInterval(1, 2**20)),
    hp.HParam("val_split", hp.RealInterval(0.0, 1.0), display_name="validation split"),
    hp.HParam("seed", hp.IntInterval(0, 2**31)),
    hp.HParam("strategy", hp.Discrete(list(STRATEGIES))),
]


def dropout_rates(model_config: dict | list) -> str:
    """"0.2, 0.3, 0.4, 0.5": the rates of the Dropout layers in a Keras model config, in order
    ("none" without any)."""
    rates: list[float] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Dropout" and isinstance(node.get("config"), dict):
                rates.append(float(node["config"].get("rate", 0.0)))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(model_config)
    return ", ".join(f"{r:g}" for r in rates) or "none"


def hparam_values(record: dict, model_config: dict | list) -> dict:
    """The run's hyperparameters from its metrics.json record (flags) and model config."""
    flags = record["flags"]
    r = recipe(flags["model"])
    return {
        "model": flags["model"], "dataset": flags["dataset"],
        "dropout_rates": dropout_rates(model_config),
        "optimizer": r.optimizer,
        "learning_rate": float(flags.get("learning_rate") or r.learning_rate),
        "batch_size": int(flags.get("batch_size") or r.batch_size),
        "epochs": int(flags.get("epochs") or r.epochs),
        "val_split": float(flags["val_split"]), "seed": int(flags["seed"]),
        "strategy": flags.get("strategy", "default"),
    }


def final_metrics(run: dict) -> dict[str, float]:
    """`final/*` values of a completed run's record."""
    values = record.final_metrics(run)
    return {f"final/{key}": float(values[key]) for key in (tag.split("/", 1)[1] for tag in METRICS)
            if values[key] is not None}


def write_hparams(run: dict, model_config: dict | list, trial_id: str) -> None:
    """Experiment config, session and final metrics into the current default writer."""
    metrics = [hp.Metric(tag, display_name=name) for tag, name in METRICS.items()]
    summaries.write_summary(hp.hparams_config_pb(hparams=HPARAMS, metrics=metrics), step=0)
    summaries.write_summary(hp.hparams_pb(hparam_values(run, model_config), trial_id=trial_id), step=0)
    summaries.scalars(final_metrics(run), step=max(int(run["epochs_run"]) - 1, 0))


def write_hparams_file(run_dir: str, run: dict, model_config: dict | list) -> None:
    """`write_hparams` into an event file of its own in `run_dir` (the session's directory)."""
    trial = os.path.basename(os.path.normpath(run_dir))
    SummaryWriters(run_dir, background=False).write_now(
        "", lambda: write_hparams(run, model_config, trial), "writing the HParams summaries")


def write_run_hparams(run_dir: str) -> None:
    """Write the HParams summaries of a completed run from its own files."""
    run = record.read(run_dir)
    if run is None or run.get("status") != "completed":
        raise ValueError(f"{run_dir}: not a completed run (metrics.json says "
                         f"{(run or {}).get('status', 'nothing')})")
    write_hparams_file(run_dir, run, model_file.saved_config(model_file.path(run_dir)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.hparams", description=(
        "Write HParams summaries (hyperparameters, final metrics) for completed runs that lack them."))
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    failed = False
    for run_dir in args.run_dirs:
        try:
            write_run_hparams(run_dir)
            print(f"{run_dir}: HParams written")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            print(f"error: {err}", file=sys.stderr)
            failed = True
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
