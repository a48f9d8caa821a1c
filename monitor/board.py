"""Serve a log directory with TensorBoard, keeping every epoch's images, texts and PR curves.

Usage:
```
python -m monitor.board                                  # logs/ on http://127.0.0.1:6006
python -m monitor.board --logdir logs/cifar --port 6007
python -m monitor.board --logdir logs --reload_interval 2   # unknown args go to tensorboard
```
Plain `tensorboard --logdir logs` keeps a random sample of 10 steps per image tag
and per text tag (and 100 per PR-curve tag). The suite splits image and text
tags into blocks of `epochs_per_tag` epochs so the plain command still serves
every epoch; this command raises the limits instead, so runs written with
`epochs_per_tag=0` (one tag per kind) are served completely too. It runs
TensorBoard's own entry point with the flags of `tensorboard_command`:
```
tensorboard --logdir logs --host 127.0.0.1 \
    --samples_per_plugin images=1000,text=1000,pr_curves=1000
```
`--samples_per_plugin` is keyed by plugin name (`images`, `text`, `pr_curves`,
`scalars`, ...; both TensorBoard's Python loader and its Rust data server read
it; a count of 0 keeps everything); a `--samples_per_plugin` given here is
merged over these values, e.g. `--samples_per_plugin images=0,scalars=5000`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

# Samples kept per tag, by TensorBoard plugin name (images default 10, text 10, pr_curves 100).
SAMPLES_PER_PLUGIN = {"images": 1000, "text": 1000, "pr_curves": 1000}


def _parse_samples(value: str) -> dict[str, str]:
    """`images=5,text=all` as TensorBoard parses it (keeps the values as given)."""
    pairs = (token.strip().split("=", 1) for token in value.split(",") if token.strip())
    return {name.strip(): count.strip() for name, count in pairs}


def tensorboard_command(logdir, port: int | None = None, host: str | None = None,
                        extra: Sequence[str] = ()) -> list[str]:
    """The TensorBoard command line serving `logdir` with every epoch kept.

    `[sys.executable, "-m", "tensorboard.main", "--logdir", logdir, ...]`; `port`
    and `host` are left to TensorBoard when None, `extra` is appended as given
    except a `--samples_per_plugin`, whose values override `SAMPLES_PER_PLUGIN`.
    """
    samples = {name: str(count) for name, count in SAMPLES_PER_PLUGIN.items()}
    rest: list[str] = []
    args = iter(extra)
    for arg in args:
        if arg == "--samples_per_plugin":
            samples.update(_parse_samples(next(args, "")))
        elif arg.startswith("--samples_per_plugin="):
            samples.update(_parse_samples(arg.split("=", 1)[1]))
        else:
            rest.append(arg)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", os.fspath(logdir)]
    if host is not None:
        command += ["--host", host]
    if port is not None:
        command += ["--port", str(port)]
    command += ["--samples_per_plugin", ",".join(f"{k}={v}" for k, v in samples.items())]
    return command + rest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.board", allow_abbrev=False,
        description="TensorBoard on a log directory, serving every epoch's images, texts and "
                    "PR curves. Other arguments are passed to tensorboard.",
    )
    parser.add_argument("--logdir", default="logs", help="log directory (default: logs)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: TensorBoard's, 6006 or the next free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    args, extra = parser.parse_known_args(argv)
    command = tensorboard_command(args.logdir, port=args.port, host=args.host, extra=extra)
    print(shlex.join(["tensorboard", *command[3:]]), file=sys.stderr, flush=True)

    from tensorboard import main as tensorboard_main  # imports TensorFlow: only when serving

    sys.argv = ["tensorboard", *command[3:]]
    tensorboard_main.run_main()


if __name__ == "__main__":
    main()
