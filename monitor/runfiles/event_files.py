"""Event files read and rewritten record by record, without TensorFlow.

An event file is a TFRecord file: each record is a little-endian uint64 length, its
masked CRC-32C (4 bytes), the serialized `Event`, and the data's masked CRC-32C. Records
are kept as the bytes they were written as (CRCs included), so rewriting a file without
some of its records needs no checksum of our own. Both checksums are checked on reading: a
record whose data is damaged (a bit flip, a copy gone wrong) is skipped, one whose length is
damaged is skipped up to the next intact record, found by its checksums; `Damage` counts
what was skipped. A record cut short (a kill while writing, or one still being written) ends
the file.

`EventFileWriter` writes one (the suite's own event files), without TensorFlow: the `Summary`
protos TensorBoard's plugins make, framed here, so that writing an epoch's summaries on the
suite's thread runs no TensorFlow op (a `tf.summary` call took the thread 0.32-0.45 ms of CPU,
holding the GIL the training thread needs between steps; a summary here 0.035-0.11 ms:
`bench/summary_writes.py`).
"""

from __future__ import annotations

import contextlib
import contextvars
import glob
import itertools
import mmap
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tensorboard.compat.proto import event_pb2, summary_pb2

from monitor.runfiles.checksums import masked_crc32c

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4


@dataclass
class Damage:
    """What reading one event file skipped: damaged records (`records`, `bytes` of them, the
    first at byte `first_offset`) and whether it ends inside a record (`cut_short`)."""

    path: str
    records: int = 0
    bytes: int = 0
    first_offset: int | None = None
    cut_short: bool = False

    def skip(self, offset: int, size: int) -> None:
        self.records += 1
        self.bytes += size
        if self.first_offset is None:
            self.first_offset = offset

    def describe(self) -> str:
        """One phrase: what was skipped (empty when nothing was)."""
        parts = []
        if self.records:
            plural = "s" if self.records > 1 else ""
            parts.append(f"{self.records} damaged record{plural} ({self.bytes} bytes, the first at byte "
                         f"{self.first_offset}) skipped")
        if self.cut_short:
            parts.append("its last record is cut short")
        return "; ".join(parts)


def paths(folder: str) -> list[str]:
    """The event files directly in `folder`, oldest first."""
    return sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*")))


_DEFAULT: contextvars.ContextVar[EventFileWriter | None] = contextvars.ContextVar("event_writer",
                                                                                  default=None)
_FILE_NUMBERS = itertools.count()


class EventFileWriter:
    """A new event file in `folder` (made if missing), named as TensorFlow names its own; summaries
    are appended as records; `flush()` hands them to the operating system, `flush(durable=True)`
    and `close()` on to the disk.

    ```python
    writer = EventFileWriter("logs/run1/monitor")
    with writer.as_default():                # what `monitor.summaries` writes goes here
        summaries.scalars({"loss": 0.5}, step=0)
    writer.add_summary(summary_pb, step=1)    # a `Summary` proto
    writer.close()
    ```
    Not thread-safe: one thread writes at a time (the suite's writer thread).
    """

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
                f"{next(_FILE_NUMBERS)}.v2")
        self.path = os.path.join(folder, name)
        self._file = open(self.path, "wb")  # noqa: SIM115 - open until close()
        self.add_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def add_summary(self, summary: summary_pb2.Summary, step: int) -> None:
        self.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def add_event(self, event: event_pb2.Event) -> None:
        self._file.write(frame(event.SerializeToString()))

    def flush(self, durable: bool = False) -> None:
        """Hand what was added to the operating system (readers see it); `durable`: and on to the
        disk (`fsync`), as before a backup is committed behind it."""
        if not self._file.closed:
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            try:
                self.flush(durable=True)
            finally:
                self._file.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[EventFileWriter]:
        """Within the block (on this thread), `default_writer()` is this writer."""
        token = _DEFAULT.set(self)
        try:
            yield self
        finally:
            _DEFAULT.reset(token)


class RecordedEvents:
    """Summaries kept in memory while it is the default writer (`as_default`), to be written into an
    `EventFileWriter` later (`write_into`), as they were added: how the suite's background threads
    prepare an epoch's summaries side by side and still write them in the order they were queued.

    ```python
    recorded = RecordedEvents()
    with recorded.as_default():
        summaries.scalars({"loss": 0.5}, step=0)
    recorded.write_into(writer)
    ```
    """

    def __init__(self):
        self.events: list[event_pb2.Event] = []

    def add_summary(self, summary: summary_pb2.Summary, step: int) -> None:
        self.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def add_event(self, event: event_pb2.Event) -> None:
        self.events.append(event)

    def write_into(self, writer: EventFileWriter) -> None:
        for event in self.events:
            writer.add_event(event)

    as_default = EventFileWriter.as_default


def default_writer() -> EventFileWriter | RecordedEvents | None:
    """The writer made default on this thread (`as_default`), or None."""
    return _DEFAULT.get()


def frame(data: bytes) -> bytes:
    """`data` (a serialized `Event`) as one record: its length, the length's masked CRC-32C, the
    data, the data's masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), data,
                     struct.pack("<I", masked_crc32c(data))))


def framed_records(path: str, damage: Damage | None = None) -> Iterator[tuple[bytes, bytes | None]]:
    """(framed bytes, event bytes) per intact record, in order; damaged records are skipped and
    counted in `damage`. The last item has event bytes None when the file ends inside a record."""
    damage = damage if damage is not None else Damage(path)
    with open(path, "rb") as f, _mapped(f) as raw:
        for pos, stop, kind in _walk(raw, 0, damage):
            if kind == "intact":
                yield bytes(raw[pos:stop]), bytes(raw[pos + _HEADER:stop - _FOOTER])
            elif kind == "cut short":
                yield bytes(raw[pos:]), None


def events_from(path: str, start: int, damage: Damage) -> Iterator[tuple[int, bytes | None]]:
    """(offset after it, event bytes) of each record from byte `start` on, event bytes None for a
    damaged one (skipped, counted in `damage`); stops before a record cut short, which may be one
    still being written: reading again from the last offset given reads it once it is whole."""
    with open(path, "rb") as f, _mapped(f) as raw:
        for pos, stop, kind in _walk(raw, start, damage):
            if kind == "cut short":
                return
            yield stop, (bytes(raw[pos + _HEADER:stop - _FOOTER]) if kind == "intact" else None)


def _walk(raw, start: int, damage: Damage) -> Iterator[tuple[int, int, str]]:
    """(start, end, "intact" | "damaged" | "cut short") of each record from `start` on; a damaged
    length is skipped up to the next intact record; a record cut short ends the walk."""
    pos, end = start, len(raw)
    while pos < end:
        kind, stop = ("cut short", end) if end - pos < _HEADER else _record_at(raw, pos)
        if kind == "cut short":
            damage.cut_short = True
            yield pos, end, kind
            return
        if kind != "intact":  # damaged data: skip the record; damaged length: skip to the next intact one
            stop = stop if kind == "bad data" else _next_record(raw, pos + 1)
            damage.skip(pos, stop - pos)
            kind = "damaged"
        yield pos, stop, kind
        pos = stop


def _record_at(raw, pos: int) -> tuple[str, int]:
    """("intact" | "bad data" | "bad length" | "cut short", end of the record) at `pos`."""
    header = raw[pos:pos + _HEADER]
    (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
    if masked_crc32c(bytes(header[:8])) != length_crc:
        return "bad length", pos
    stop = pos + _HEADER + length + _FOOTER
    if stop > len(raw):
        return "cut short", stop
    (data_crc,) = struct.unpack("<I", raw[stop - _FOOTER:stop])
    intact = masked_crc32c(bytes(raw[pos + _HEADER:stop - _FOOTER])) == data_crc
    return ("intact" if intact else "bad data"), stop


def _next_record(raw, start: int) -> int:
    """The offset of the first record at or after `start` whose checksums hold (or which is cut
    short at the end of the file); the end of the file when there is none."""
    for pos in range(start, len(raw) - _HEADER + 1):
        kind, _ = _record_at(raw, pos)
        if kind in ("intact", "cut short"):
            return pos
    return len(raw)


@contextlib.contextmanager
def _mapped(f):
    """The file's bytes, mapped (an empty file: b"")."""
    if os.fstat(f.fileno()).st_size == 0:
        yield b""
        return
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as raw:
        yield raw


def events(path: str, damage: Damage | None = None) -> Iterator[event_pb2.Event]:
    """Every whole, intact event of one file, in order (what was skipped: in `damage`)."""
    for _, data in framed_records(path, damage):
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
