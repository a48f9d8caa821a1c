"""CRC-32C of event-file records: google-crc32c's C extension against the NumPy fallback, side by side.

`monitor.runfiles.checksums` checks two CRC-32Cs per record whenever a run's event files are read
(report.html, the dashboard's damaged-run reader, repair). Prints microseconds per record for
record sizes an event file holds (a scalar, a text, an image summary).

    .venv/bin/python bench/checksums.py
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.runfiles import checksums  # noqa: E402  (needs ROOT on sys.path)


def main() -> None:
    ways = [("google-crc32c", checksums._native), ("numpy fallback", checksums.python_crc32c)]
    print("| record bytes | " + " | ".join(f"{name} us" for name, fn in ways if fn is not None) + " |")
    print("|---:|" + "---:|" * sum(fn is not None for _, fn in ways))
    for size in (100, 5_000, 200_000):
        data = os.urandom(size)
        cells = [f"{timeit.timeit(lambda fn=fn, data=data: fn(data), number=50) / 50 * 1e6:.1f}"
                 for _, fn in ways if fn is not None]
        print(f"| {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
