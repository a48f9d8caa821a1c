"""Train a reference CNN with the TensorBoard monitoring suite attached.

    python train.py --model dropout            # the dropout recipe on CIFAR-10
    tensorboard --logdir logs                  # then watch it
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"train.py: error: {message} (see python train.py --help)\n")


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """train.py's flags; with `suppress_defaults` only the flags given appear in the namespace."""
    from monitor.data import DATASETS
    from monitor.recipes import MODELS

    p = _Parser(
        description="Train a reference CNN and watch every epoch in TensorBoard: confusion "
        "matrix, per-class precision/recall/F1, sample predictions, PR curves, histograms.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", choices=MODELS, nargs="+",
                   help="reference model (REFERENCE.md); required unless --resume. Several (e.g. "
                   "--model baseline dropout) train one after another under one parent folder "
                   "(--logdir/--run-name, default compare-<time>) and end with a comparison")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a killed or interrupted run from its last finished epoch, with the "
                   "flags it was started with (other flags must agree with them)")
    p.add_argument("--dataset", default=["cifar10"], choices=DATASETS, nargs="+",
                   help="data set; several train every model on each")
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's: baseline/dropout 31, "
                   "tutorial 50, twoblock 10, simple 5)")
    p.add_argument("--batch-size", type=int, help="global batch size, split across devices and "
                   "workers under --strategy (default: the recipe's)")
    p.add_argument("--learning-rate", type=float, help="optimiser learning rate (default: 0.001)")
    p.add_argument("--val-split", type=float, default=0.3,
                   help="fraction of the training set held out for validation (stratified)")
    p.add_argument("--seed", type=int, default=42, help="seed for split, shuffling and weights")
    p.add_argument("--data-dir", help="folder with cifar10.npz / mnist.npz or the official "
                   "files (default: $MONITOR_DATA_DIR, else Keras' download)")
    p.add_argument("--logdir", default="logs", help="where run directories go")
    p.add_argument("--run-name", help="run directory name (default: <dataset>-<model>-<time>); "
                   "with several models or data sets, the parent folder's; an existing one is an error")
    p.add_argument("--limit", type=int, help="use only N training images (stratified), for quick runs")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop when val_loss has not improved for PATIENCE epochs, restoring the "
                   "best weights; 0 = off (default: tutorial 3, others off)")
    p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker"),
                   help="tf.distribute strategy: mirrored = every local GPU; multiworker = the cluster "
                   "in TF_CONFIG (needs --run-name; only the chief writes)")
    s = p.add_argument_group("monitoring suite")
    s.add_argument("--no-suite", dest="suite", action="store_false",
                   help="only Keras' TensorBoard callback (scalars, histograms, graph)")
    for part, what in (("histograms", "weight histograms"), ("confusion-matrix", "confusion matrix images"),
                       ("per-class", "per-class scalars and table"),
                       ("prediction-grid", "sample-prediction grid and probability images"),
                       ("pr-curves", "per-class PR curves")):
        s.add_argument(f"--no-{part}", dest=part.replace("-", "_"), action="store_false",
                       help=f"turn off {what}")
    s.add_argument("--every-n-epochs", type=int, default=1, help="write the suite every N epochs")
    s.add_argument("--grid-size", type=int, default=18, help="images in the prediction grid")
    s.add_argument("--grid-columns", type=int, default=6, help="columns of the prediction grid")
    s.add_argument("--probability-images", type=int, default=4,
                   help="images shown beside their class-probability bars")
    s.add_argument("--confused-pairs", type=int, default=5, help="most-confused class pairs listed")
    s.add_argument("--mistakes", type=int, default=64,
                   help="most confident mistakes kept per validation pass, for the dashboard (0: off)")
    s.add_argument("--mistakes-grid", type=int, default=12,
                   help="of those, shown in the mistakes/most_confident image")
    s.add_argument("--epochs-per-tag", type=int, default=10,
                   help="epochs per image/text tag, so plain `tensorboard --logdir` serves every "
                   "epoch (TensorBoard keeps 10 images per tag); 0 = one tag")
    if suppress_defaults:
        for action in p._actions:
            action.default = argparse.SUPPRESS
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, Slurm, Kubernetes), unwound like Ctrl-C; exit code 143."""

    signal_name = "SIGTERM"


def _on_sigterm(signum, frame):
    raise Terminated()


def _single(values):
    """A one-element list from nargs="+" as its element (what a stored run's flags hold)."""
    return values[0] if isinstance(values, list) and len(values) == 1 else values


def main(argv=None) -> int:
    args = parse_args(argv)
    from monitor.config import RunConfig
    from monitor.data import load_splits
    from monitor.errors import MonitorError
    from monitor.runs import check_writable_logdir, resume_config

    signal.signal(signal.SIGTERM, _on_sigterm)
    run_dir = None
    try:
        # Flags and data are checked before TensorFlow loads: errors come at once, alone.
        if args.resume:
            typed = vars(build_parser(suppress_defaults=True).parse_args(argv))
            given = {k: _single(v) for k, v in typed.items() if k != "resume"}
            if isinstance(given.get("model"), list) or isinstance(given.get("dataset"), list):
                raise MonitorError("--resume continues one run: give no --model / --dataset lists")
            configs = [resume_config(args.resume, given)]
            run_dir = args.resume
        elif args.model is None:
            raise MonitorError("--model is required (or --resume RUN_DIR to continue a run)")
        else:
            skip = ("resume", "model", "dataset", "run_name")
            flags = {k: v for k, v in vars(args).items() if k not in skip}
            pairs = [(m, d) for d in dict.fromkeys(args.dataset) for m in dict.fromkeys(args.model)]
            if len(pairs) > 1:
                from monitor.runs import comparison_dir_path

                multi_data = len(set(args.dataset)) > 1
                flags.update(logdir=comparison_dir_path(args.logdir, args.run_name))
                configs = [RunConfig(model=m, dataset=d, **flags, run_name=f"{m}-{d}" if multi_data else m)
                           for m, d in pairs]
            else:
                configs = [RunConfig(model=pairs[0][0], dataset=pairs[0][1], run_name=args.run_name, **flags)]
            configs = [c.resolved() for c in configs]
            check_writable_logdir(args.logdir)
        all_splits = {}
        for c in configs:  # every data set checked before the first run starts
            key = (c.dataset, c.data_dir, c.val_split, c.seed, c.limit)
            if key not in all_splits:
                all_splits[key] = load_splits(*key)
        from monitor.training import NonFiniteLoss, run

        failed = False
        run_dirs = []
        for c in configs:
            try:
                if len(configs) > 1:
                    print(f"== {c.model} on {c.dataset} ({len(run_dirs) + 1}/{len(configs)}) ==", flush=True)
                record = run(c, all_splits[(c.dataset, c.data_dir, c.val_split, c.seed, c.limit)],
                             resume_dir=run_dir)
                run_dirs.append(record["run_dir"])
            except NonFiniteLoss as err:
                print(f"train.py: error: {err}", file=sys.stderr)
                failed = True
        if len(configs) > 1 and run_dirs:
            from monitor.compare import write_comparison

            paths = write_comparison(run_dirs, configs[0].logdir)
            print(open(paths["table"], encoding="utf-8").read(), end="")
            print(f"Comparison: {paths['png']}, {paths['table']}; TensorBoard: "
                  f"tensorboard --logdir {configs[0].logdir}")
        if failed:
            return 3
    except MonitorError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        record = getattr(interrupt, "record", None)  # set by monitor.training.run
        if record:
            print(f"train.py: {what} after epoch {record['epochs_run']}; summaries flushed, the backup of "
                  f"that epoch kept. Resume with: {record['resume_command']}", file=sys.stderr)
        else:
            print(f"train.py: {what} before the first epoch ended; nothing kept", file=sys.stderr)
        return 143 if terminated else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
