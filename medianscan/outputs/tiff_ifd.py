"""TIFF IFDs written by hand, for the DNG writer: entries typed as the DNG specification asks, values packed
little-endian, rationals as the closest fraction with 32-bit parts, and tags carried over from a source DNG
packed as tifffile reads them."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

# TIFF field types.
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = range(1, 13)
DTYPES: dict[int, str] = {
    BYTE: "u1",
    ASCII: "u1",
    SHORT: "<u2",
    LONG: "<u4",
    RATIONAL: "<u4",
    SBYTE: "i1",
    UNDEFINED: "u1",
    SSHORT: "<i2",
    SLONG: "<i4",
    SRATIONAL: "<i4",
    FLOAT: "<f4",
    DOUBLE: "<f8",
}


@dataclass
class IfdEntry:
    type: int
    count: int
    data: bytes


class Ifd:
    """One TIFF IFD being built: entries sorted by tag, values longer than 4 bytes stored right after it."""

    def __init__(self) -> None:
        self.entries: dict[int, IfdEntry] = {}

    def set(self, tag: int, type_code: int, values: Iterable[float] | bytes | npt.NDArray[np.generic]) -> None:
        count, data = pack_values(type_code, values)
        self.entries[tag] = IfdEntry(type_code, count, data)

    def set_text(self, tag: int, text: str) -> None:
        data = text.encode("utf-8", errors="replace") + b"\x00"
        self.entries[tag] = IfdEntry(ASCII, len(data), data)

    def set_packed(self, tag: int, type_code: int, entry: tuple[int, bytes]) -> None:
        self.entries[tag] = IfdEntry(type_code, entry[0], entry[1])

    def nbytes(self) -> int:
        extra = sum(len(e.data) + (len(e.data) & 1) for e in self.entries.values() if len(e.data) > 4)
        return 2 + 12 * len(self.entries) + 4 + extra

    def pack(self, at: int) -> bytes:
        """The IFD as bytes when placed at file offset `at` (no next IFD)."""
        tags = sorted(self.entries)
        table = [struct.pack("<H", len(tags))]
        values: list[bytes] = []
        value_at = at + 2 + 12 * len(tags) + 4
        for tag in tags:
            entry = self.entries[tag]
            if len(entry.data) <= 4:
                table.append(struct.pack("<HHI", tag, entry.type, entry.count) + entry.data.ljust(4, b"\x00"))
            else:
                table.append(struct.pack("<HHII", tag, entry.type, entry.count, value_at))
                padded = entry.data + b"\x00" * (len(entry.data) & 1)
                values.append(padded)
                value_at += len(padded)
        table.append(struct.pack("<I", 0))
        return b"".join(table + values)


def pack_values(type_code: int, values: Iterable[float] | bytes | npt.NDArray[np.generic]) -> tuple[int, bytes]:
    """(count, little-endian bytes) of `values` as TIFF type `type_code`; reals become rationals."""
    if isinstance(values, bytes | bytearray):
        return len(values), bytes(values)
    flat = np.asarray(list(values) if not isinstance(values, np.ndarray) else values).reshape(-1)
    if type_code in (RATIONAL, SRATIONAL):
        pairs = [rational(float(v), signed=type_code == SRATIONAL) for v in flat]
        return len(pairs), np.asarray(pairs, dtype=DTYPES[type_code]).tobytes()
    dtype = np.dtype(DTYPES[type_code])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if flat.size and (flat.min() < info.min or flat.max() > info.max):
            raise ValueError(f"values {flat.tolist()} do not fit TIFF type {type_code}")
    return flat.size, flat.astype(dtype).tobytes()


def rational(value: float, *, signed: bool) -> tuple[int, int]:
    """The closest fraction with 32-bit parts (1/400 s stays 1/400, 0.6257 becomes 6257/10000)."""
    if not np.isfinite(value):
        raise ValueError(f"cannot store {value} as a TIFF rational")
    limit = (1 << 31) - 1 if signed else (1 << 32) - 1
    if not signed and value < 0:
        raise ValueError(f"cannot store {value} as an unsigned TIFF rational")
    largest = min(1_000_000, max(1, int(limit / max(abs(value), 1.0))))
    exact = Fraction(value)
    # The smallest power-of-ten denominator that keeps the value to float32 precision: rawpy's matrices and
    # exiv2's exposure times are float32, so 0.62569999 is really 6257/10000.
    denominator = 1
    while denominator < largest:
        fraction = exact.limit_denominator(denominator)
        if abs(fraction - exact) <= 1e-6 * abs(exact):
            return fraction.numerator, fraction.denominator
        denominator *= 10
    fraction = exact.limit_denominator(largest)
    return fraction.numerator, fraction.denominator


def pack_given(tag: int, type_code: int, count: int, value: object) -> tuple[int, bytes]:
    """Pack a tag carried over from a DNG source, (type, count, value) as tifffile reads and writes them.

    Rationals may come as 2*count integers (numerator, denominator pairs, tifffile's reading) or as
    count real numbers.
    """
    if type_code not in DTYPES:
        raise ValueError(f"tag {tag}: unknown TIFF type {type_code}")
    if isinstance(value, str):
        data = value.encode("utf-8", errors="replace") + b"\x00"
        return len(data), data
    if isinstance(value, bytes | bytearray):
        return len(value), bytes(value)
    flat = np.asarray(value if isinstance(value, Sequence | np.ndarray) else [value]).reshape(-1)
    if type_code in (RATIONAL, SRATIONAL) and flat.size == 2 * count and flat.dtype.kind in "iu":
        return count, flat.astype(DTYPES[type_code]).tobytes()
    packed_count, data = pack_values(type_code, flat)
    if packed_count != count:
        raise ValueError(f"tag {tag}: {packed_count} values where the count says {count}")
    return packed_count, data
