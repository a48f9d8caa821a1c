"""What a run leaves in its directory: one module per file, holding its name, writer and reader.

| file                                   | module            |
|----------------------------------------|-------------------|
| `metrics.json` (flags, status, history, final metrics) | `record`  |
| `validation_confusion_matrices.jsonl`  | `matrices`        |
| `validation_per_class.csv`             | `per_class_csv`   |
| `validation_multilabel_counts.jsonl` (multi-label heads) | `multilabel_counts` |
| `validation_calibration.jsonl` (single-label and binary heads) | `calibration_lines` |
| `confusion_matrix_test.csv`            | `test_confusion`  |
| `backup/epoch-NNNN/` (resume state)    | `backups`         |
| `model.keras`                          | `model_file`      |
| event files under `monitor/`, `test/`, `train/`, `validation/` | `event_files` (read, rewritten) |

`event_files.EventFileWriter` also writes the suite's own (`monitor/`, `test/`, the HParams session),
without TensorFlow.

`report.html` and its PNGs are `monitor.report`'s (it builds them from the files above).

Nothing here imports TensorFlow or Keras at import time: reading a run needs neither.
"""

from __future__ import annotations

from monitor.runfiles import calibration_lines, matrices, multilabel_counts, per_class_csv

SUITE_DIR = "monitor"  # the suite's own event files (Keras owns train/ and validation/)
TEST_DIR = "test"  # the test split's event files, written once at the end of a run

# The files with one entry per validated epoch: resume cuts each of them back to the last
# committed epoch. Each module has `FILE` and `truncate(run_dir, from_epoch)`.
PER_EPOCH = (matrices, per_class_csv, multilabel_counts, calibration_lines)
