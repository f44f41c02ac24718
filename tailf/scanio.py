"""Reading logs for a search: plain and gzip readers and a splitter into runs of whole lines.

Lines are cut and decoded exactly as the tail engine (`tailf.follow`) does: a line over
`max_line` bytes keeps its first `max_line` bytes plus `CUT_MARKER`; memory stays bounded by
one block whatever the file or line length.
"""

import codecs
import os
import zlib

from tailf.follow import CUT_MARKER

try:
    import numpy
except ImportError:  # the search still works, counting lines at about half the speed
    numpy = None

BLOCK = 8 * 1024 * 1024
GZ_INPUT = 256 * 1024
SALVAGE_STEP = 256


NUMPY_FROM = 64 * 1024
NUMPY_STEP = 256 * 1024


def count_newlines(data, start, end):
    """Return how many b"\\n" bytes `data[start:end]` holds (vectorised for large spans).

    Large spans are counted NUMPY_STEP bytes at a time, so the comparison's temporary array
    stays in the CPU's cache instead of being a fresh copy of the span's size.
    """
    if numpy is None or end - start < NUMPY_FROM:
        return data.count(b"\n", start, end)
    view = numpy.frombuffer(data, numpy.uint8, end - start, start)
    return sum(int(numpy.count_nonzero(view[low:low + NUMPY_STEP] == 10))
               for low in range(0, end - start, NUMPY_STEP))


class GzipError(Exception):
    """A gzip file is corrupt or truncated; the message says which and where."""


class Splitter:
    """Splits blocks of bytes into pieces: ("run", data, start, end) and ("line", str).

    A run is `data[start:end]`: whole lines, each ending in b"\\n" and none over the limit.
    A line piece is one decoded line: a cut long line, or a last line without newline.
    """

    def __init__(self, encoding, max_line):
        self.encoding = encoding
        self.max_line = max_line
        self.long = None

    def split(self, data, final):
        """Return (pieces, consumed, line_end) for `data`.

        `consumed` bytes of `data` are dealt with (the rest, an unfinished line, must be
        offered again with more data); `line_end` is the index after the last newline seen,
        or -1. With `final`, the data is the end of the file and everything is consumed.
        """
        pieces, start, size = [], 0, len(data)
        if self.long is not None:
            newline = data.find(b"\n")
            if newline < 0:
                if final:
                    pieces.append(("line", self.long))
                    self.long = None
                return pieces, size, -1
            pieces.append(("line", self.long))
            self.long = None
            start = newline + 1
        end = data.rfind(b"\n", start) + 1 or start
        self._runs(data, start, end, pieces)
        line_end = end if end > start or start else -1
        rest = size - end
        if rest > self.max_line:
            self.long = self.cut(data[end:end + self.max_line])
            if final:
                pieces.append(("line", self.long))
                self.long = None
            return pieces, size, line_end
        if final:
            if rest:
                raw = data[end:]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                pieces.append(("line", raw.decode(self.encoding, "replace")))
            return pieces, size, line_end
        return pieces, end, line_end

    def cut(self, raw):
        """Decode the first `max_line` bytes of a long line and add the marker."""
        decoder = codecs.getincrementaldecoder(self.encoding)("replace")
        return decoder.decode(raw[: self.max_line], final=False) + \
            CUT_MARKER.format(limit=self.max_line)

    def _runs(self, data, start, end, pieces):
        """Add the runs of `data[start:end]` (whole lines) to `pieces`, long lines cut apart."""
        limit = self.max_line
        position = run_start = start
        while end - position > limit:
            newline = data.rfind(b"\n", position, position + limit + 1)
            if newline >= 0:
                position = newline + 1
                continue
            line_end = data.find(b"\n", position + limit + 1, end)
            if position > run_start:
                pieces.append(("run", data, run_start, position))
            pieces.append(("line", self.cut(data[position:position + limit])))
            position = run_start = line_end + 1
        if end > run_start:
            pieces.append(("run", data, run_start, end))


def gzip_chunks(fd, limit, block=BLOCK):
    """Yield (decompressed bytes, compressed bytes read) for a gzip file, member after member.

    Output comes in pieces of at most `block` bytes (a gzip bomb cannot fill memory); raises
    GzipError for corrupt or truncated data, after yielding what could be read.
    """
    position, pending, started = 0, b"", False
    decompressor = zlib.decompressobj(wbits=47)
    more_output = False
    while True:
        if not pending and not more_output:
            if position >= limit:
                break
            pending = os.pread(fd, min(GZ_INPUT, limit - position), position)
            if not pending:
                break
            position += len(pending)
        backup = decompressor.copy()
        try:
            out = decompressor.decompress(pending, block)
        except zlib.error as exc:
            yield from _salvage(backup, pending, position, block)
            raise GzipError(f"corrupt gzip data near byte {position} ({exc})") from None
        started = started or bool(pending)
        more_output = len(out) == block
        if decompressor.eof:
            pending = decompressor.unused_data
            decompressor = zlib.decompressobj(wbits=47)
            started, more_output = False, False
            if pending and not pending.strip(b"\0") and position >= limit:
                pending = b""
        else:
            pending = decompressor.unconsumed_tail
        if out:
            yield out, position
    if started:
        raise GzipError("gzip data is truncated (unexpected end of file)")


def _salvage(decompressor, data, position, block):
    """Yield what decompresses before the damage in `data`, feeding it a little at a time."""
    for start in range(0, len(data), SALVAGE_STEP):
        piece = data[start:start + SALVAGE_STEP]
        while piece:
            try:
                out = decompressor.decompress(piece, block)
            except zlib.error:
                return
            if out:
                yield out, position
            if decompressor.eof:
                return
            piece = decompressor.unconsumed_tail
