"""Gzip objects as the loader writes them, damaged ones included: inflate what can be inflated,
say whether the object was intact, and find its complete lines as offsets into the text.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import NamedTuple

import numpy as np
from zlib_ng import zlib_ng  # inflates the same streams about twice as fast, with zlib's interface

GZIP_CHUNK = 64 * 1024
# Pieces of the usual (intact, one-member) object: compressed input, and text out of one call.
INPUT_PIECE = 1 << 20
OUTPUT_PIECE = 64 << 20


class Inflated(NamedTuple):
    """What an object decompressed to."""

    text: bytes | bytearray
    intact: bool  # the whole stream decompressed (else only the text before the damage or the bound)
    too_large: bool = False  # stopped at `max_bytes`: the rest of the object was not read


def gunzip_prefix(data: bytes, max_bytes: int | None = None) -> Inflated:
    """Decompress gzip members for as long as the stream is intact, up to `max_bytes`.

    A truncated or corrupt stream keeps every byte that decompressed before the damage. The text
    grows in one buffer (a bytearray, which reads like bytes) rather than as pieces joined at the
    end, and never past `max_bytes` (a small object can inflate to gigabytes: a gzip bomb).
    """
    out = bytearray()
    rest = data
    while rest:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        position = 0
        while position < len(rest) and not decompressor.eof:
            chunk = rest[position : position + GZIP_CHUNK]
            before = decompressor.copy()
            # One byte past the room left shows that the object goes on (0 would mean no limit).
            room = 0 if max_bytes is None else max_bytes - len(out) + 1
            try:
                out += decompressor.decompress(chunk, room)
            except zlib.error:
                # Replay the damaged chunk byte by byte to keep what precedes the damage.
                for i in range(len(chunk)):
                    try:
                        out += before.decompress(chunk[i : i + 1])
                    except zlib.error:
                        break
                return _bounded(out, max_bytes) or Inflated(out, False)
            if max_bytes is not None and len(out) > max_bytes:
                return _bounded(out, max_bytes)
            position += len(chunk) - len(decompressor.unconsumed_tail)
        if not decompressor.eof:
            return Inflated(out, False)  # cut off mid-member
        # The next member (concatenated gzip files are valid gzip) starts after this one.
        rest = decompressor.unused_data + rest[position:]
    return Inflated(out, True)


def _bounded(out: bytearray, max_bytes: int | None) -> Inflated | None:
    """`out` cut to `max_bytes` when it went past it (else None)."""
    if max_bytes is None or len(out) <= max_bytes:
        return None
    del out[max_bytes:]
    return Inflated(out, False, too_large=True)


def _inflate(data: bytes, max_bytes: int | None) -> tuple[bytearray, str]:
    """The first gzip member of `data` into one bytearray, input and output a piece at a time,
    and how it ended: "whole" (that member was all of `data`), "cut_short" (the data ended inside
    it: a truncated object, the text being all that precedes the cut), "more" (data follows it),
    or "too_large" (stopped at `max_bytes`). Raises zlib.error on damage."""
    decompressor = zlib_ng.decompressobj(zlib_ng.MAX_WBITS | 16)
    out = bytearray()
    view = memoryview(data)
    start = 0
    while start < len(data) and not decompressor.eof:
        pending: bytes | memoryview = view[start : start + INPUT_PIECE]
        start += INPUT_PIECE
        while pending and not decompressor.eof:
            # One byte past the room left shows that the object goes on.
            room = OUTPUT_PIECE if max_bytes is None else min(OUTPUT_PIECE, max_bytes - len(out) + 1)
            out += decompressor.decompress(pending, room)
            if max_bytes is not None and len(out) > max_bytes:
                del out[max_bytes:]
                return out, "too_large"
            pending = decompressor.unconsumed_tail
    if not decompressor.eof:
        return out, "cut_short"
    return out, "whole" if not decompressor.unused_data and start >= len(data) else "more"


def decompress(data: bytes, max_bytes: int | None = None) -> Inflated:
    """The object's text (gunzipped when it is gzip), at most `max_bytes` of it."""
    # A lone first byte of the gzip magic is a gzip object cut after that byte, not a text.
    if not data or not b"\x1f\x8b".startswith(data[:2]):
        if max_bytes is not None and len(data) > max_bytes:
            return Inflated(data[:max_bytes], False, too_large=True)
        return Inflated(data, True)
    # The usual object, one intact gzip member, straight into one growing buffer (zlib drops the
    # GIL meanwhile; one call or gzip.decompress would briefly hold the text twice, its pieces and
    # their join). An object cut short (the usual damage: a loader stopped mid-write) is read
    # once: its text is what any reader gets before the cut.
    try:
        text, ending = _inflate(data, max_bytes)
        if ending != "more":
            return Inflated(text, ending == "whole", too_large=ending == "too_large")
        del text
    except zlib_ng.error:
        pass
    # Several members, or damage inside the stream: chunk by chunk, keeping what precedes the
    # damage. gzip takes a few things the chunked way calls damage (zero padding after a member),
    # so it decides first.
    inflated = gunzip_prefix(data, max_bytes)
    if inflated.intact or inflated.too_large:
        return inflated
    del inflated
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            text = stream.read() if max_bytes is None else stream.read(max_bytes)
            if max_bytes is not None and len(text) == max_bytes and stream.read(1):
                return Inflated(text, False, too_large=True)
    except (OSError, EOFError, zlib.error):
        return gunzip_prefix(data, max_bytes)
    return Inflated(text, True)


# Bytes of text searched for line ends at a time: a whole-text comparison would hold a byte of
# mask per byte of text.
SCAN_BYTES = 16 << 20


def _positions(buffer: np.ndarray, byte: int) -> np.ndarray:
    """Offsets of `byte` in the buffer, a piece at a time."""
    found = [
        np.flatnonzero(buffer[start : start + SCAN_BYTES] == byte) + start
        for start in range(0, len(buffer), SCAN_BYTES)
    ]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def line_bounds(text: bytes | bytearray, intact: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, ends_with_lone_cr) of each line of an object's text, as offsets into it.

    The lines are those of `splitlines()` for an intact text (ends at `\n`, `\r\n` and a lone
    `\r`) and those of `split(b"\n")` before the last newline for a damaged one (whatever follows
    it was cut off), so no line is ever copied to be found.
    """
    buffer = np.frombuffer(text, dtype=np.uint8)
    newlines = _positions(buffer, 10)
    if not intact:
        if not len(newlines) or newlines[-1] <= 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=bool)
        starts = np.concatenate([[0], newlines[:-1] + 1])
        return starts, newlines, np.zeros(len(newlines), dtype=bool)
    lone_cr = np.zeros(0, dtype=np.int64)
    crlf = np.zeros(len(newlines), dtype=bool)
    if text.count(b"\r"):
        returns = _positions(buffer, 13)
        following = np.append(buffer, 0)[returns + 1]
        lone_cr = returns[following != 10]
        crlf = np.append(buffer, 0)[np.maximum(newlines - 1, 0)] == 13
        crlf &= newlines > 0
    ends = np.concatenate([newlines - crlf, lone_cr])
    separators = np.concatenate([newlines, lone_cr])
    by_cr = np.concatenate([np.zeros(len(newlines), dtype=bool), np.ones(len(lone_cr), dtype=bool)])
    order = np.argsort(separators, kind="stable")
    separators, ends, by_cr = separators[order], ends[order], by_cr[order]
    starts = np.concatenate([[0], separators + 1])
    if starts[-1] < len(text):  # a last line without a line end
        ends = np.append(ends, len(text))
        by_cr = np.append(by_cr, False)
    else:
        starts = starts[:-1]
    return starts.astype(np.int64), ends.astype(np.int64), by_cr


def complete_lines(text: bytes | bytearray, intact: bool) -> list[bytes]:
    """The lines of an object's text; of a damaged stream only those complete before the damage."""
    starts, ends, _ = line_bounds(text, intact)
    return [bytes(text[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
