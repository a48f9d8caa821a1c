"""Where the suite's extra seconds go in a `bench/short_epochs.py` run: once per fit, or every epoch.

Reads the raw numbers a `short_epochs.py --out F.json` run kept (no Keras, no new fit) and, for each
repeat, subtracts the plain fit run next to it, phase by phase: each epoch's training phase (its
start to its validation pass) and validation pass, the wait at the end (the last validation pass's
end to the last image on disk), and the rest of the fit (on_train_begin, the epoch-end hooks
between the phases). Per classes and way it prints the medians over the repeats (min-max):

- epoch 1 (training phase + validation pass): the suite's start (the drawing process's imports, the
  traces of the capture and of Grad-CAM beside training, the first validation pass traced with the
  capture);
- epoch 2: the first epoch's pictures, drawn beside its training;
- each later epoch (median over epochs 3..E): what the suite costs every epoch once started (the
  capture's ops in each validation step, the hooks, the pictures the budget draws);
- the end and the rest;
- **once**: the fit's extra seconds less E times the per-epoch extra: with these two, a fit of E
  epochs of T seconds costs about 1 + per-epoch / T + once / (E * T) of a plain one (a model; with
  3 epochs the per-epoch extra is one epoch's difference per repeat, and noisy: `--epochs 6` reads
  four).

    .venv/bin/python bench/phases.py bench/results/short_epochs_stop39.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def pair_parts(suite: dict, none: dict) -> dict:
    """One repeat's extra seconds, suite minus plain, phase by phase (3 epochs or more: `main` checks)."""
    epochs = len(none["train_s"])
    train = [s - n for s, n in zip(suite["train_s"], none["train_s"], strict=True)]
    val = [s - n for s, n in zip(suite["val_s"], none["val_s"], strict=True)]
    end = (suite["fit_s"] - suite["end_of_last_epoch_s"]) - (none["fit_s"] - none["end_of_last_epoch_s"])
    fit = suite["fit_s"] - none["fit_s"]
    per_epoch = statistics.median(t + v for t, v in zip(train[2:], val[2:], strict=True))
    plain = zip(none["train_s"][2:], none["val_s"][2:], strict=True)
    plain_epoch = statistics.median(t + v for t, v in plain)
    return {"fit": fit, "epoch1": train[0] + val[0], "epoch2": train[1] + val[1], "later": per_epoch,
            "end": end, "rest": fit - sum(train) - sum(val) - end, "once": fit - epochs * per_epoch,
            "plain_epoch": plain_epoch, "plain_fit": none["fit_s"]}


def summarise(raw: dict) -> list[dict]:
    """Per classes and suite way, the medians (and spreads) of `pair_parts` over the repeats."""
    rows = []
    for classes, ways in raw.items():
        none = ways["none"]
        for way in (w for w in ways if w.startswith("suite")):
            parts = [pair_parts(s, n) for s, n in zip(ways[way], none, strict=True)]
            row = {"classes": int(classes), "way": way, "repeats": len(parts)}
            for key in parts[0]:
                values = [p[key] for p in parts]
                row[key] = statistics.median(values)
                row[key + "_spread"] = (min(values), max(values))
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(row, key):
        low, high = row[key + "_spread"]
        return f"{row[key]:+.2f} ({low:+.2f}..{high:+.2f})"

    lines = ["| classes | way | repeats | plain fit s | plain later epoch s | extra: whole fit s | epoch 1 s "
             "| epoch 2 s | each later epoch s (% of plain) | end s | rest s | **once** s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        share = 100 * r["later"] / r["plain_epoch"]
        lines.append(
            f"| {r['classes']} | {r['way']} | {r['repeats']} | {r['plain_fit']:.2f} | {r['plain_epoch']:.2f} "
            f"| {cell(r, 'fit')} | {cell(r, 'epoch1')} | {cell(r, 'epoch2')} "
            f"| {cell(r, 'later')} ({share:+.1f}%) "
            f"| {cell(r, 'end')} | {cell(r, 'rest')} | **{cell(r, 'once')}** |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="JSON files written by bench/short_epochs.py --out")
    p.add_argument("--out", help="also write the table here (markdown)")
    args = p.parse_args(argv)
    tables = []
    for path in args.results:
        data = json.loads(Path(path).read_text())
        if data["raw"] and len(next(iter(data["raw"].values()))["none"][0]["train_s"]) < 3:
            print(f"{path}: fewer than 3 epochs, no later epoch to read", file=sys.stderr)
            continue
        tables.append(f"{Path(path).name}:\n\n{markdown(summarise(data['raw']))}\n")
    print("\n".join(tables))
    if args.out:
        Path(args.out).write_text("\n".join(tables))


if __name__ == "__main__":
    main()
