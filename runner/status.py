"""A run's `metrics.json` through its life: running, then completed, interrupted or failed."""

from __future__ import annotations

import shlex
import time

from monitor import data as data_mod
from monitor import runs
from monitor.metrics import per_class
from monitor.runfiles import calibration_lines, record


def resume_command(run_dir: str) -> str:
    return f"python train.py --resume {shlex.quote(run_dir)}"


def started(run, model) -> dict:
    """The record of a run that starts (or, resumed, goes on): flags, sizes, provenance."""
    c, splits = run.config, run.splits
    existing = record.read(run.run_dir) if run.resumed else None
    rec = existing or {
        "status": "running", "flags": c.as_dict(), "run_dir": run.run_dir,
        "parameters": model.count_params(), "replicas": run.strategy.num_replicas_in_sync,
        "train_size": len(splits.x_train), "validation_size": len(splits.x_val),
        "test_size": len(splits.dataset.x_test),
        "provenance": {
            "data_source": splits.dataset.source,
            "data_sha256": data_mod.file_sha256(splits.dataset.source),
            "packages": runs.package_versions(),
            "git": runs.git_commit(),
        },
    }
    if existing is not None:
        rec.setdefault("resumed", []).append({"after_epoch": run.initial_epoch, "at": round(time.time())})
    rec.update(status="running", resume_command=resume_command(run.run_dir))
    return rec


def alerts_until(alarms, done: int) -> list[dict] | None:
    """The alerts of epochs 1..`done` (`alarms`: the suite's `AlarmsCallback`; None: alarms off)."""
    return None if alarms is None else [a for a in alarms.alerts if a["epoch"] <= done]


def _with_alerts(rec: dict, alerts: list[dict] | None) -> dict:
    return rec if alerts is None else rec | {"alerts": alerts}


def _with_calibration(rec: dict, done: int) -> dict:
    """`validation_ece`: each epoch's ECE from the run's `validation_calibration.jsonl` (None for
    an epoch without one); left out when the run has no such file."""
    by_epoch = calibration_lines.ece_by_epoch(rec["run_dir"]) if rec.get("run_dir") else {}
    return rec | {"validation_ece": [by_epoch.get(e) for e in range(done)]} if by_epoch else rec


def with_epochs(rec: dict, done: int, history: dict, alerts: list[dict] | None = None) -> dict:
    return _with_calibration(_with_alerts(rec | {"epochs_run": done, "history": history}, alerts), done)


def interrupted(rec: dict, signal_name: str, last, start: float, alerts: list[dict] | None = None) -> dict:
    done = last.epochs_done
    return _with_calibration(_with_alerts(
        rec | {"status": "interrupted", "signal": signal_name, "epochs_run": done,
               "history": last.history, "wall_time_s": round(time.time() - start, 2)}, alerts), done)


def failed(rec: dict, message: str, last, history: dict, start: float,
           alerts: list[dict] | None = None) -> dict:
    return _with_alerts(rec | {"status": "failed: non-finite loss", "error": message,
                               "epochs_run": last.epochs_done if last else 0,
                               "history": history, "wall_time_s": round(time.time() - start, 2)}, alerts)


def storage_failed(rec: dict, status: str, error: str, last, start: float,
                   alerts: list[dict] | None = None) -> dict:
    """A run stopped by a write that failed (`status`: e.g. "failed: disk full"): the last
    committed epoch's history, and the command that resumes it once the cause is gone."""
    done = last.epochs_done if last else 0
    return _with_alerts(rec | {"status": status, "error": error, "epochs_run": done,
                               "history": last.history if last else {},
                               "wall_time_s": round(time.time() - start, 2)}, alerts)


def completed(rec: dict, result, test_logs: dict, test_cm, class_names: list[str], start: float,
              background_seconds: float, test_calibration: dict | None = None) -> dict:
    """The record of a finished, tested run (`result`: the fit's `FitResult`)."""
    at = {k: v[result.weights_epoch - 1] for k, v in result.history.items()}
    pc = per_class(test_cm)
    rec = {k: v for k, v in rec.items() if k != "resume_command"}
    rec.update(
        status="completed", epochs_run=result.epochs_run, weights_epoch=result.weights_epoch,
        wall_time_s=round(time.time() - start, 2), fit_time_s=round(result.fit_seconds, 2),
        suite_seconds_on_training_thread=result.suite_seconds,
        suite_seconds_in_background=round(background_seconds, 3),
        history=result.history,
        final={
            "train": {"loss": at["loss"], "accuracy": at["accuracy"]},
            "validation": {"loss": at.get("val_loss"), "accuracy": at.get("val_accuracy")},
            "test": {"loss": float(test_logs["loss"]), "accuracy": float(test_logs["accuracy"])}
            | ({} if test_calibration is None else {k: test_calibration[k] for k in ("ece", "mce")}),
        },
        test_per_class={name: {m: float(pc[m][i]) for m in ("precision", "recall", "f1")}
                        | {"support": int(pc["support"][i])}
                        for i, name in enumerate(class_names)},
    )
    if result.early_stopped:
        rec["early_stopped"] = True
    return _with_calibration(_with_alerts(rec, result.alerts), result.epochs_run)
