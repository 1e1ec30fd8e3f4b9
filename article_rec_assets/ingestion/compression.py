"""Gzip objects as the loader writes them, damaged ones included: inflate what can be inflated,
say whether the object was intact, and cut the text into complete lines a piece at a time.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

GZIP_CHUNK = 64 * 1024


# Bytes of an object's text split into lines at a time: all its lines at once, as separate bytes
# objects next to the text, would double the object's memory.
LINE_PIECE_BYTES = 8 << 20


def gunzip_prefix(data: bytes) -> tuple[bytes | bytearray, bool]:
    """Decompress gzip members for as long as the stream is intact.

    Returns (what decompressed, whether the whole stream was intact). A truncated or corrupt
    stream keeps every byte that decompressed before the damage. The text grows in one buffer
    (a bytearray, which reads like bytes) rather than as pieces joined at the end.
    """
    out = bytearray()
    rest = data
    while rest:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        position = 0
        while position < len(rest) and not decompressor.eof:
            chunk = rest[position : position + GZIP_CHUNK]
            before = decompressor.copy()
            try:
                out += decompressor.decompress(chunk)
            except zlib.error:
                # Replay the damaged chunk byte by byte to keep what precedes the damage.
                for i in range(len(chunk)):
                    try:
                        out += before.decompress(chunk[i : i + 1])
                    except zlib.error:
                        break
                return out, False
            position += len(chunk)
        if not decompressor.eof:
            return out, False  # cut off mid-member
        # The next member (concatenated gzip files are valid gzip) starts after this one.
        rest = decompressor.unused_data + rest[position:]
    return out, True


def decompress(data: bytes) -> tuple[bytes | bytearray, bool]:
    """The object's text (gunzipped when it is gzip) and whether it was intact."""
    if data[:2] != b"\x1f\x8b":
        return data, True
    # The usual object, one intact gzip member, in one call into one growing buffer (zlib drops
    # the GIL meanwhile; gzip.decompress would briefly hold the text twice, its blocks and their join).
    try:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        text = decompressor.decompress(data)
        if decompressor.eof and not decompressor.unused_data:
            return text, True
        del text
    except zlib.error:
        pass
    # Several members, or damage: chunk by chunk, keeping what precedes the damage. gzip takes a
    # few things the chunked way calls damage (zero padding after a member), so it decides first.
    text, intact = gunzip_prefix(data)
    if intact:
        return text, True
    del text
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error):
        return gunzip_prefix(data)


def line_pieces(text: bytes | bytearray, intact: bool) -> Iterator[list[bytes]]:
    """The lines of an object's text (of a damaged stream only those complete before the damage),
    a piece of about LINE_PIECE_BYTES at a time, so that a large object's lines are never all
    held at once. Pieces are cut at newlines, where neither way of splitting (`splitlines` of an
    intact text, `split` of a damaged one) splits differently from splitting the whole."""
    if intact:
        end = len(text)
    else:
        end = text.rfind(b"\n")  # what follows the last newline is cut off by the damage
        if end <= 0:
            return
    position = 0
    while True:
        cut = text.find(b"\n", position + LINE_PIECE_BYTES, end)
        if cut < 0:
            piece = text[position:end]
            yield piece.splitlines() if intact else piece.split(b"\n")
            return
        yield text[position : cut + 1].splitlines() if intact else text[position:cut].split(b"\n")
        position = cut + 1


def complete_lines(text: bytes | bytearray, intact: bool) -> list[bytes]:
    """The lines of an object's text; of a damaged stream only those complete before the damage."""
    return [line for piece in line_pieces(text, intact) for line in piece]


def pick_lines(text: bytes | bytearray, intact: bool, numbers: set[int]) -> dict[int, bytes]:
    """The lines with these (1-based) numbers, without splitting the whole text at once."""
    picked: dict[int, bytes] = {}
    first = 1
    for piece in line_pieces(text, intact):
        picked.update((n, piece[n - first]) for n in numbers if first <= n < first + len(piece))
        first += len(piece)
    return picked
