"""The finish step: save, reload and test the model, then record, HParams and report."""

from __future__ import annotations

import os
import warnings

from monitor.calibration import calibration_scalars, reliability
from monitor.hparams import write_hparams_file
from monitor.matrix_summaries import write_confusion, write_per_class
from monitor.metrics import accuracy
from monitor.render.reliability import reliability_png
from monitor.report import REPORT_FILE, build_report
from monitor.runfiles import TEST_DIR, backups, model_file, record, test_confusion
from runner import status
from runner.inputs import evaluate_with_confusion, prepare_arrays


def finish(r, model, result) -> dict:
    """The completed run's record (also in metrics.json); a worker that is not the chief only
    says it is done."""
    if not r.chief:
        r.writers.close()
        print(f"Worker done: {result.epochs_run} epochs in {result.fit_seconds:.0f} s; the chief saves "
              "and tests.", file=r.out, flush=True)
        return r.record | {"status": "completed", "epochs_run": result.epochs_run}
    test_logs, test_cm, test_calibration = _test(r, model)
    calibration = None if test_calibration is None else reliability(**test_calibration)
    _write_test_summaries(r, result, test_logs, test_cm, test_calibration)
    rec = status.completed(r.record, result, test_logs, test_cm, r.class_names, r.start,
                           r.writers.busy_seconds, calibration)
    try:
        write_hparams_file(r.run_dir, rec, model.get_config())
    except Exception as err:  # noqa: BLE001 - a finished, tested run must not be lost to its HParams
        warnings.warn(f"monitor: cannot write the HParams summaries: {type(err).__name__}: {err}",
                      RuntimeWarning, stacklevel=2)
    record.write(r.run_dir, rec)
    backups.remove(r.run_dir)  # a completed run is never resumed
    try:
        build_report(r.run_dir)
    except Exception as err:  # noqa: BLE001 - the run is complete; its report can be rebuilt
        warnings.warn(f"monitor: cannot write report.html ({type(err).__name__}: {err}); rebuild it with "
                      f"python -m monitor.report {r.run_dir}", RuntimeWarning, stacklevel=2)
    _say_done(r, rec, result, test_logs)
    return rec


def _test(r, model):
    """Save the model, reload it as a user would, and evaluate it once on the test split."""
    path = model_file.path(r.run_dir)
    model.save(path)
    reloaded = model_file.load(path)
    ds, c, num_classes = r.splits.dataset, r.config, len(r.class_names)
    x, y = prepare_arrays(ds.x_test, ds.y_test, c.model, num_classes, c.binary)
    return evaluate_with_confusion(reloaded, x, y, c.batch_size, num_classes)


def _write_test_summaries(r, result, test_logs: dict, test_cm, statistics: dict | None) -> None:
    """The test split's matrices, per-class numbers, calibration and scalars (`test/`), and its CSV."""
    from monitor import summaries
    from monitor.dashboard import summary as dashboard_summary

    calibration = None if statistics is None else reliability(**statistics)
    step, names = result.epochs_run - 1, r.class_names
    restored = result.weights_epoch != result.epochs_run
    title = (f"Test confusion matrix after {result.epochs_run} epochs"
             + (f" (weights of epoch {result.weights_epoch})" if restored else "")
             + f", accuracy {accuracy(test_cm):.3f}")

    def write_test() -> None:
        if calibration is not None and r.config.calibration:  # before the counts, as the suite's
            dashboard_summary.calibration_bins(**statistics, step=step, split="test")
        write_confusion(test_cm, names, title, step, top_pairs=r.config.confused_pairs, split="test")
        write_per_class(test_cm, names, step)
        if calibration is not None and r.config.calibration:
            summaries.scalars(calibration_scalars(calibration), step)
            summaries.png_image("calibration/reliability", reliability_png(
                calibration, f"Test reliability after {result.epochs_run} epochs"), step)
        summaries.scalars({"test/loss": test_logs["loss"], "test/accuracy": test_logs["accuracy"]}, step)

    r.writers.submit(TEST_DIR, write_test)
    r.writers.close()
    test_confusion.write(r.run_dir, test_cm, names)


def _say_done(r, rec: dict, result, test_logs: dict) -> None:
    restored = result.weights_epoch != result.epochs_run
    print(f"Test accuracy {test_logs['accuracy']:.4f}, loss {test_logs['loss']:.4f} "
          f"({result.epochs_run} epochs, {rec['wall_time_s']:.0f} s"
          + (f"; weights of epoch {result.weights_epoch}, restored by early stopping)" if restored else ")"),
          file=r.out)
    print(f"Run directory: {r.run_dir}", file=r.out)
    print(f"Report:        {os.path.join(r.run_dir, REPORT_FILE)}", file=r.out)
    print(f"Open it:       tensorboard --logdir {r.config.logdir}", file=r.out, flush=True)
