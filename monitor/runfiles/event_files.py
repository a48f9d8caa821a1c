"""Event files read and rewritten record by record, without TensorFlow.

An event file is a TFRecord file: each record is a little-endian uint64 length, its
masked CRC-32C (4 bytes), the serialized `Event`, and the data's masked CRC-32C. Records
are kept as the bytes they were written as (CRCs included), so rewriting a file without
some of its records needs no checksum of our own. A record cut short (a kill while
writing) ends the file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import struct
from collections.abc import Iterator

from tensorboard.compat.proto import event_pb2

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4


def paths(folder: str) -> list[str]:
    """The event files directly in `folder`, oldest first."""
    return sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*")))


def framed_records(path: str) -> Iterator[tuple[bytes, bytes | None]]:
    """(framed bytes, event bytes) per record; the last item has event bytes None when
    the file ends inside a record."""
    with open(path, "rb") as f:
        while True:
            header = f.read(_HEADER)
            if not header:
                return
            if len(header) < _HEADER:
                yield header, None
                return
            (length,) = struct.unpack("<Q", header[:8])
            body = f.read(length + _FOOTER)
            if len(body) < length + _FOOTER:
                yield header + body, None
                return
            yield header + body, body[:length]


def events(path: str) -> Iterator[event_pb2.Event]:
    """Every whole event of one file, in order."""
    for _, data in framed_records(path):
        if data is not None:
            yield event_pb2.Event.FromString(data)


def rewrite(path: str, framed: list[bytes]) -> None:
    """Replace `path` with these framed records (a temporary file, then a rename)."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.writelines(framed)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)  # `path` stays as it was
        raise


def image_png(event: event_pb2.Event, tag_prefix: str) -> bytes | None:
    """The PNG of an image summary (`[width, height, png]` tensor) whose tag starts with `tag_prefix`."""
    for value in event.summary.value:
        if value.tag.startswith(tag_prefix) and len(value.tensor.string_val) >= 3:
            return value.tensor.string_val[2]
    return None
