"""CRC-32C (Castagnoli), as TFRecord files checksum each record.

Google's `google-crc32c` (a C extension, in requirements.txt) computes it when installed: a
5 KB record in about 1 us against 0.5 ms below (`python bench/checksums.py` prints both).
Without it, in Python and NumPy only: short data goes byte by byte (a table lookup each); long
data (an image summary) is cut into lanes that NumPy checksums side by side, then joined: the
register after a lane is the register before it carried over the lane's length of zero bytes (a
linear map, applied by table), XOR the lane's own checksum from zero. About 15 times faster than
byte by byte on a megabyte.
"""

from __future__ import annotations

import functools

import numpy as np

try:
    from google_crc32c import implementation as _implementation
    from google_crc32c import value as _native
except ImportError:  # pragma: no cover - the package is in requirements.txt
    _implementation, _native = None, None
if _implementation != "c":
    _native = None  # its pure-Python fallback is slower than ours

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_LANES = 2048
_SHORT = 32 * 1024  # below this, byte by byte


def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _make_table()
_TABLE = tuple(int(v) for v in TABLE)


def _register(data, crc: int = 0) -> int:
    """The CRC register after `data`, from `crc` (no pre- or post-inversion)."""
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _lane_registers(lanes: np.ndarray) -> np.ndarray:
    """The register of each row of `lanes` (uint8, lanes x length), each from zero."""
    crc = np.zeros(lanes.shape[0], np.uint32)
    for column in lanes.T:
        crc = TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
    return crc


@functools.lru_cache(maxsize=64)
def _zeros_map(length: int) -> tuple[tuple[int, ...], ...]:
    """Four 256-entry tables of the linear map "carry the register over `length` zero bytes"."""
    basis = _lane_registers_from(np.array([1 << k for k in range(32)], np.uint32), length)
    tables = []
    for part in range(4):
        bits = [int(basis[8 * part + k]) for k in range(8)]
        table = [0] * 256
        for value in range(1, 256):
            low = value & -value
            table[value] = table[value ^ low] ^ bits[low.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)


def _lane_registers_from(start: np.ndarray, zeros: int) -> np.ndarray:
    crc = start.copy()
    for _ in range(zeros):
        crc = TABLE[crc & 0xFF] ^ (crc >> 8)
    return crc


def crc32c(data: bytes) -> int:
    """The CRC-32C of `data`."""
    if _native is not None:
        return _native(data)
    return python_crc32c(data)


def python_crc32c(data: bytes) -> int:
    """The CRC-32C of `data`, without the C extension."""
    if len(data) < _SHORT:
        return _register(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
    width = len(data) // _LANES
    head = len(data) - width * _LANES
    crc = _register(memoryview(data)[:head], 0xFFFFFFFF)
    lanes = np.frombuffer(data, np.uint8, offset=head).reshape(_LANES, width)
    t0, t1, t2, t3 = _zeros_map(width)
    for lane in _lane_registers(lanes).tolist():
        crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ lane
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C a TFRecord stores."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF

