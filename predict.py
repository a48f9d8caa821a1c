"""Classify image files with a trained run's model.

    python predict.py bird.jpg plane.png --run logs/cifar10-dropout-20261125-101500
    python predict.py photos/*.jpg --run RUN_DIR --top 3
    python predict.py digit.png --model-path model.keras --json

Each image (PNG, JPEG, any size, colour or grey) is prepared as training prepared its inputs:
the model's channels, its input size (bilinear resizing, said in the output) and the recipe's
scaling. The model is loaded with safe_mode=True (a file holding code is refused). A file that
cannot be read gets one line on stderr; the others are still classified; the exit code is then 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"predict.py: error: {message} (see python predict.py --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description="Classify images with a trained run's model (prepared as in training).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, any size, colour or grey")
    p.add_argument("--run", metavar="RUN_DIR", help="a run directory train.py made: its model.keras, class "
                   "names and input scaling")
    p.add_argument("--model-path", help="a .keras file (with --run: instead of the run's own model)")
    p.add_argument("--top", type=int, default=1, metavar="K", help="print the K most probable classes")
    p.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    return p


def _line(prediction, size: tuple[int, int], resample: str) -> str:
    classes = ", ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
    if len(prediction.top) == 1:
        name, p = prediction.top[0]
        classes = f"{name} ({100 * p:.1f}%)"
    notes = []
    if prediction.resized_from:
        notes.append(f"resized {prediction.resized_from[0]}x{prediction.resized_from[1]} -> "
                     f"{size[0]}x{size[1]}, {resample}")
    if prediction.converted_from:
        notes.append(f"converted from {prediction.converted_from}")
    if prediction.exif_orientation:
        notes.append(f"turned upright (EXIF orientation {prediction.exif_orientation})")
    return f"{prediction.path}: {classes}" + (f"  [{'; '.join(notes)}]" if notes else "")


@contextlib.contextmanager
def _tensorflow_start_up_quiet():
    """TensorFlow's C++ start-up lines (oneDNN, CUDA probing) kept off stderr, so that stderr
    holds only this script's own lines; they are shown if something inside fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.run is None and args.model_path is None:
        print("predict.py: error: give --run RUN_DIR (or --model-path PATH.keras)", file=sys.stderr)
        return 2
    if args.top < 1:
        print(f"predict.py: error: invalid --top {args.top}: expected a positive integer", file=sys.stderr)
        return 2
    from monitor.errors import MonitorError

    error = None
    with _tensorflow_start_up_quiet():
        from monitor.predict import RESAMPLE, classify, load_classifier

        try:
            classifier = load_classifier(args.run, args.model_path)
        except MonitorError as err:
            error = err
    if error is not None:
        print(f"predict.py: error: {error}", file=sys.stderr)
        return 2
    for note in classifier.notes:
        print(f"predict.py: note: {note}", file=sys.stderr)
    top = min(args.top, len(classifier.class_names))
    results = classify(classifier, args.images, top=top)
    height, width, _ = classifier.input_shape
    if args.json:
        print(json.dumps([{
            "path": r.path, "error": r.error,
            "predictions": [{"class": name, "probability": p} for name, p in r.top],
            "resized_from": list(r.resized_from) if r.resized_from else None,
            "resized_to": [width, height] if r.resized_from else None, "resample": RESAMPLE,
            "converted_from": r.converted_from, "exif_orientation": r.exif_orientation,
        } for r in results], indent=1))
    for r in results:
        if r.error:
            print(f"predict.py: {r.path}: {r.error}", file=sys.stderr)
            continue
        if not args.json:
            print(_line(r, (width, height), RESAMPLE))
    return 2 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
