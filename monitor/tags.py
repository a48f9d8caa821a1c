"""Tag names: the block of epochs a tag holds, and class names as tag components. No TensorFlow."""

from __future__ import annotations

import re

_BLOCK = re.compile(r"/epochs_(\d{3,})-(\d{3,})$")


def block_tag(tag: str, step: int, epochs_per_tag: int) -> str:
    """`tag` with the block of epochs `step` falls in, e.g. `cm/epochs_011-020`.

    TensorBoard keeps 10 images (and 10 texts, and 10 tensors of a plugin) per tag unless
    told otherwise; with at most 10 steps per tag, `tensorboard --logdir logs` serves every
    epoch. `epochs_per_tag=0` keeps one tag for all epochs.
    """
    if epochs_per_tag <= 0:
        return tag
    first = step // epochs_per_tag * epochs_per_tag + 1
    return f"{tag}/epochs_{first:03d}-{first + epochs_per_tag - 1:03d}"


def holds_step(tag: str, step: int) -> bool:
    """Whether a `block_tag` can hold `step` (a tag without a block holds every step)."""
    match = _BLOCK.search(tag)
    return match is None or int(match.group(1)) <= step + 1 <= int(match.group(2))


def class_tag(name: str) -> str:
    """A class name as a tag component (TensorBoard tags are path-like)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)
