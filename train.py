"""Train a reference CNN with the TensorBoard monitoring suite attached.

    python train.py --model dropout            # the dropout recipe on CIFAR-10
    tensorboard --logdir logs                  # then watch it

Every flag but --resume is a field of `monitor.settings.RunConfig`, with its help and choices.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

SUITE_GROUP_FROM = "suite"  # this field and those after it are listed under "monitoring suite"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"train.py: error: {message} (see python train.py --help)\n")


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """train.py's flags, from RunConfig's fields; with `suppress_defaults` only the flags given
    appear in the namespace."""
    from monitor.settings import cli_fields

    p = _Parser(
        description="Train a reference CNN and watch every epoch in TensorBoard: confusion "
        "matrix, per-class precision/recall/F1, sample predictions, PR curves, histograms.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a killed or interrupted run from its last finished epoch, with the "
                   "flags it was started with (other flags must agree with them)")
    group = p
    for f in cli_fields():
        if f.name == SUITE_GROUP_FROM:
            group = p.add_argument_group("monitoring suite")
        _add_flag(group, f)
    if suppress_defaults:
        for action in p._actions:
            action.default = argparse.SUPPRESS
    return p


def _add_flag(group, f) -> None:
    """One RunConfig field as a flag: `--no-<name>` for a switch on by default; lists for
    `--model` and `--dataset` (several runs)."""
    from dataclasses import MISSING

    meta, dashed = f.metadata, f.name.replace("_", "-")
    if f.default is True:
        group.add_argument(f"--no-{dashed}", dest=f.name, action="store_false",
                           help=f"turn off {meta['help']}")
        return
    kwargs = {"help": meta["help"], "choices": meta["choices"], "metavar": meta["metavar"],
              "type": float if "float" in str(f.type) else int if "int" in str(f.type) else str}
    if str(f.type).startswith("list"):
        kwargs.update(nargs="+", default=f.default)
    elif f.name in ("model", "dataset"):
        kwargs.update(nargs="+", default=None if f.default is MISSING else [f.default])
        if f.name == "model":
            kwargs["help"] += "; required unless --resume"
    else:
        kwargs["default"] = f.default
    group.add_argument(f"--{dashed}", **kwargs)


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _single(values):
    """A one-element list from nargs="+" as its element (what a stored run's flags hold)."""
    return values[0] if isinstance(values, list) and len(values) == 1 else values


def run_configs(args: argparse.Namespace, argv) -> list:
    """The runs the flags ask for: a resumed one, one, or one per (model, dataset) pair."""
    from monitor.errors import MonitorError
    from monitor.runs import check_writable_logdir, comparison_dir_path
    from monitor.settings import RunConfig

    if args.resume:
        from monitor.resume import resume_config

        typed = vars(build_parser(suppress_defaults=True).parse_args(argv))
        given = {k: _single(v) for k, v in typed.items() if k != "resume"}
        if isinstance(given.get("model"), list) or isinstance(given.get("dataset"), list):
            raise MonitorError("--resume continues one run: give no --model / --dataset lists")
        return [resume_config(args.resume, given)]
    if args.model is None:
        raise MonitorError("--model is required (or --resume RUN_DIR to continue a run)")
    flags = {k: v for k, v in vars(args).items() if k not in ("resume", "model", "dataset", "run_name")}
    pairs = [(m, d) for d in dict.fromkeys(args.dataset) for m in dict.fromkeys(args.model)]
    if len(pairs) > 1:
        multi_data = len(set(args.dataset)) > 1
        flags.update(logdir=comparison_dir_path(args.logdir, args.run_name))
        configs = [RunConfig(model=m, dataset=d, **flags, run_name=f"{m}-{d}" if multi_data else m)
                   for m, d in pairs]
    else:
        configs = [RunConfig(model=pairs[0][0], dataset=pairs[0][1], run_name=args.run_name, **flags)]
    configs = [c.resolved() for c in configs]
    check_writable_logdir(args.logdir)
    return configs


def _splits_key(c) -> tuple:
    return (c.dataset, c.data_dir, c.val_split, c.seed, c.limit, tuple(c.classes or ()))


def train_all(configs: list, resume_dir: str | None, hooks) -> tuple[list[str], bool]:
    """Every data set checked, then each run in turn; (run directories, whether one failed)."""
    from monitor.data import load_splits

    all_splits = {}
    for c in configs:  # every data set checked before the first run starts (and TensorFlow loads)
        if _splits_key(c) not in all_splits:
            all_splits[_splits_key(c)] = load_splits(*_splits_key(c))
    from runner.training import NonFiniteLoss, run

    failed, run_dirs = False, []
    for c in configs:
        try:
            if len(configs) > 1:
                print(f"== {c.model} on {c.dataset} ({len(run_dirs) + 1}/{len(configs)}) ==", flush=True)
            record = run(c, all_splits[_splits_key(c)], resume_dir=resume_dir, hooks=hooks)
            run_dirs.append(record["run_dir"])
        except NonFiniteLoss as err:
            print(f"train.py: error: {err}", file=sys.stderr)
            failed = True
    return run_dirs, failed


def compare(run_dirs: list[str], logdir: str) -> None:
    from monitor.compare import write_comparison

    paths = write_comparison(run_dirs, logdir)
    print(open(paths["table"], encoding="utf-8").read(), end="")
    print(f"Comparison: {paths['png']}, {paths['table']}; TensorBoard: tensorboard --logdir {logdir}")


def interrupted(interrupt: KeyboardInterrupt) -> int:
    """Say what an interrupt kept and how to resume; the exit code (130, or 143 for SIGTERM)."""
    from monitor.interrupts import Terminated

    terminated = isinstance(interrupt, Terminated)
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    record = getattr(interrupt, "record", None)  # set by runner.fitting.fit
    if record:
        print(f"train.py: {what} after epoch {record['epochs_run']}; summaries flushed, the backup of "
              f"that epoch kept. Resume with: {record['resume_command']}", file=sys.stderr)
    else:
        print(f"train.py: {what} before the first epoch ended; nothing kept", file=sys.stderr)
    return 143 if terminated else 130


def main(argv=None, hooks=None) -> int:
    """train.py; `hooks` (a `runner.hooks.RunHooks`) is the seam tests inject faults through."""
    args = parse_args(argv)
    from monitor import interrupts
    from monitor.errors import MonitorError, StorageError
    from monitor.runfiles import damage
    from runner.hooks import NONE

    interrupts.install()
    try:
        configs = run_configs(args, argv)  # flags checked before TensorFlow loads: errors come at once
        with damage.on_one_line("train.py"):  # a damaged run file read back: one line
            run_dirs, failed = train_all(configs, args.resume, hooks or NONE)
        if len(configs) > 1 and run_dirs:
            compare(run_dirs, configs[0].logdir)
        return 3 if failed else 0
    except StorageError as err:  # a full disk, a read-only file system: what is kept, how to resume
        print(f"train.py: error: {err}", file=sys.stderr)
        return 4
    except MonitorError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        return interrupted(interrupt)


if __name__ == "__main__":
    sys.exit(main())
