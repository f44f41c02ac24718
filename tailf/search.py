"""History search: scan log files (plain or gzip, oldest first) for a pattern, in small steps.

`scan()` is a generator of events; each step does a bounded amount of work (one block of at
most 8 MiB, or a few hundred candidate lines), so the caller can stop it at any moment by
closing it. Blocks are searched whole: for a literal every match contains (`tailf.literal`)
with `bytes.find`, else with RE2; only hits are split into lines, and every hit is confirmed
on its decoded line with the caller's pattern, so what matches is exactly what
`pattern.search(line)` accepts for the lines the tail engine would deliver.
"""

import codecs
import collections
import os
import re
import stat
import time

import re2

from tailf.follow import check_encoding
from tailf.literal import LiteralFinder, required_literals
from tailf.roots import OutsideRoots
from tailf.scanio import BLOCK, GzipError, Splitter, count_newlines, gzip_chunks
from webapp.streams.text import say

SEEN_BYTES = 64
PROGRESS_EVERY = 0.25
CHECK_EVERY = 256
BATCH_MATCHES = 500
BATCH_CHARS = 512 * 1024
MAX_CONTEXT = 20
MAX_FILES = 256
MAX_AROUND = 2500  # `lines` up to TAIL_MAX_BACKLOG (5000), half each side
RESCANS = 3
SLOW_BLOCK = 0.2
FAST_BLOCK = SLOW_BLOCK / 4
MIN_BLOCK = 256 * 1024
LINE_ANCHORED = re.compile(r"\\[Az]|\(\?[A-Za-z]*-[A-Za-z]*m")


def open_file(path):
    """Open a file for reading without blocking on FIFOs (the default opener)."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)


def block_pattern(pattern):
    """Return the bytes RE2 pattern that finds candidate lines in a block of UTF-8 lines.

    It is the line pattern with `^`/`$` meaning line start/end. Patterns whose meaning
    depends on the text being one line (`\\A`, `\\z`, multi-line mode switched off) get
    one that makes every line a candidate.
    """
    source = pattern.pattern if hasattr(pattern, "pattern") else pattern
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    options = getattr(pattern, "options", None)
    if LINE_ANCHORED.search(source):
        return re2.compile(b"(?m)^")
    return re2.compile(b"(?m)" + source.encode("utf-8"), options)


def scan(files, pattern, context=0, max_matches=10000, encoding="utf-8",
         max_line=64 * 1024, opener=open_file, live=True, block=BLOCK, clock=time.monotonic,
         view=None, prefilter=True, max_seconds=None):
    """Search `files` (oldest first) for `pattern` (an RE2 pattern, or its source); yield events.

    Events, in file order: ("matches", path, [{"line_no", "line", "before", "after"}, ...]),
    ("progress", scanned, total, matches) at least every PROGRESS_EVERY seconds of work,
    ("notice", text), and last ("done", scanned, total, matches, position). Bytes are counted
    as stored (compressed for .gz). With `live`, the last file is the live log: its partial
    last line is left alone and `position` is (st_dev, st_ino, offset) just after the last
    complete line scanned, for a follower to go on from; it is None when there is no live
    file to go on from (missing, or the search stopped at `max_matches`). `opener(path)`
    returns a file descriptor; any exception it raises skips that file with a notice.

    `view(line) -> (subject, shown)`: for files of records (a container's log), the pattern
    is matched against `subject` and matches and context show `shown`. `prefilter=False`
    when the pattern cannot be looked for in the stored bytes (escaped records): every line
    is then a candidate.

    After `max_seconds` (by `clock`) the search ends as at `max_matches`, with its own notice.
    """
    search = Search(files, pattern, context, max_matches, encoding, max_line, opener, live,
                    block, clock, max_seconds)
    if view is not None:
        search.use_view(view, prefilter)
    return search.events()


class Search:
    """The state of one search; `events()` runs it."""

    def __init__(self, files, pattern, context, max_matches, encoding, max_line, opener,
                 live, block, clock, max_seconds=None):
        check_encoding(encoding)
        if not 0 <= context <= MAX_CONTEXT:
            raise ValueError(f"context must be 0..{MAX_CONTEXT}")
        if max_matches < 1:
            raise ValueError("max_matches must be 1 or more")
        self.files = list(files)
        self.verify = (re2.compile(pattern) if isinstance(pattern, str) else pattern).search
        self.finder = block_pattern(pattern)
        self.context = context
        self.max_matches = max_matches
        self.encoding = encoding
        self.max_line = max_line
        self.opener = opener
        self.live = live and bool(self.files) and not self.files[-1].endswith(".gz")
        self.max_block = max(block, max_line + 2)
        self.min_block = min(self.max_block, max(MIN_BLOCK, max_line + 2))
        self.block = self.min_block
        self.clock = clock
        self.ascii_safe = _ascii_safe(encoding)
        self.utf8 = codecs.lookup(encoding).name == "utf-8"
        literals = required_literals(pattern) if self.utf8 else []
        self.literal = LiteralFinder(literals) if literals else None
        self.scanned = 0
        self.total = 0
        self.count = 0
        self.full = False
        self.last_progress = clock()
        self.max_seconds = max_seconds
        self.deadline = None if max_seconds is None else self.last_progress + max_seconds
        self.timed_out = False
        self.batch, self.batch_chars, self.path = [], 0, None
        self.extra_fds = []
        self.buffer = None
        self.view = None

    def use_view(self, view, prefilter):
        """Match and show lines through `view` (see `scan`)."""
        search = self.verify
        self.view = view
        self.verify = lambda line: search(view(line)[0])
        source = getattr(self.finder, "pattern", b"")
        if not prefilter or b"^" in source:
            self.finder = re2.compile(b"(?m)^")
        if not prefilter:
            self.literal = None

    def events(self):
        """Yield the events of the whole search (see `scan`)."""
        handles, notices = self._open_all()
        yield from notices
        position = None
        try:
            for index, (path, fd, info) in enumerate(handles):
                is_live = self.live and index == len(handles) - 1 and path == self.files[-1]
                if path.endswith(".gz"):
                    yield from self._scan_gzip(path, fd, info)
                else:
                    state = _FileState(self, path, is_live)
                    yield from self._scan_plain(state, fd, info, 0, info.st_size, not is_live)
                    if is_live and self.full:
                        yield from self._flush_file(state)
                    elif is_live:
                        position = yield from self._follow_rotations(state, fd, info)
                if self.full or self._out_of_time():
                    break
            if self.timed_out:
                position = None
                yield ("notice", say("search_time_limit", limit=self.max_seconds))
            elif self.full:
                position = None
                yield ("notice", say("search_max_matches", limit=self.max_matches))
            yield ("done", self.scanned, self.total, self.count, position)
        finally:
            for fd in [fd for _, fd, _ in handles] + self.extra_fds:
                os.close(fd)

    def _open_all(self):
        """Open every file up front (renames during the search then change nothing)."""
        handles, notices = [], []
        files = self.files
        if len(files) > MAX_FILES:
            notices.append(("notice", say("search_file_limit", limit=MAX_FILES,
                                          count=len(files))))
            files = files[-MAX_FILES:]
        for path in files:
            opened = self._open(path)
            if isinstance(opened, str):
                notices.append(("notice", opened))
                continue
            handles.append((path, opened[0], opened[1]))
        unique, seen = [], set()
        for path, fd, info in reversed(handles):  # the same file twice: keep the newer name
            if (info.st_dev, info.st_ino) in seen:
                os.close(fd)
                continue
            seen.add((info.st_dev, info.st_ino))
            unique.append((path, fd, info))
            self.total += info.st_size
        return unique[::-1], notices

    def _open(self, path):
        """Return (fd, stat) of a regular file, or the text of a notice saying why not."""
        try:
            fd = self.opener(path)
        except FileNotFoundError:
            return say("search_missing", path=path)
        except PermissionError:
            return say("search_denied", path=path)
        except (OSError, OutsideRoots) as exc:  # the confined opener's refusals
            return say("search_refused", path=path,
                       error=getattr(exc, "strerror", None) or exc)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return say("search_not_regular", path=path)
        return fd, info

    def _scan_plain(self, state, fd, info, start, limit, final):
        """Scan `fd` from `start` to `limit`; generator returning the end offset of whole lines."""
        position, seen = start, None
        while position < limit:
            if seen and os.pread(fd, len(seen), position - len(seen)) != seen:
                yield from self._flush_file(state)
                yield ("notice", say("search_rewritten", path=state.path))
                state.truncated = True
                return
            want = min(self.block, limit - position)
            chunk = self._read(fd, want, position)
            if len(chunk) < want:
                yield from self._flush_file(state)
                yield ("notice", say("search_truncated", path=state.path))
                state.truncated = True
                return
            last = position + want >= limit
            started = time.monotonic()
            pieces, consumed, line_end = state.splitter.split(chunk, final and last)
            if line_end >= 0:
                state.complete = position + line_end
            for piece in pieces:
                yield from state.piece(piece)
            if consumed:
                seen = chunk[max(0, consumed - SEEN_BYTES):consumed]
            position += consumed
            self.scanned += consumed
            self._pace(time.monotonic() - started)
            if last or not consumed or (self.full and not state.waiting()):
                break
            yield from self._tick()
        self.scanned += limit - position
        if final:
            yield from self._flush_file(state)

    def _pace(self, seconds):
        """Size the next block by how long this one took, so every step stays short.

        The search starts with a small block (a costly pattern can hold the process for
        seconds on 8 MiB, and a Stop waits for the step under way), doubles it while steps
        are quick and halves it when one is slow.
        """
        if seconds > SLOW_BLOCK and self.block > self.min_block:
            self.block = max(self.block // 2, self.min_block)
            self.buffer = None
        elif seconds < FAST_BLOCK and self.block < self.max_block:
            self.block = min(self.block * 2, self.max_block)
            self.buffer = None

    def _read(self, fd, size, position):
        """Read into one reused buffer (fresh 8 MiB buffers cost page faults every block)."""
        if self.buffer is None:
            self.buffer = bytearray(self.block)
        if size < self.block:
            return os.pread(fd, size, position)
        got = os.preadv(fd, [self.buffer], position)
        return self.buffer if got == self.block else self.buffer[:got]

    def _follow_rotations(self, state, fd, info):
        """After the live file: if its name now holds another file, finish the old one and
        search the new one too. Returns the position where a follower goes on."""
        for _ in range(RESCANS):
            try:
                now = os.stat(state.path)
            except OSError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):
                break
            if state.truncated:
                break
            size = os.fstat(fd).st_size
            self.total += max(0, size - info.st_size)
            self.scanned -= info.st_size - state.complete
            yield from self._scan_plain(state, fd, info, state.complete, size, True)
            if now is None or self.full:
                return None
            opened = self._open(state.path)
            if isinstance(opened, str):
                yield ("notice", opened)
                return None
            yield ("notice", say("search_rotated", path=state.path))
            fd, info = opened
            self.extra_fds.append(fd)
            self.total += info.st_size
            state = _FileState(self, state.path, True)
            yield from self._scan_plain(state, fd, info, 0, info.st_size, False)
            if self.full:
                return None
        yield from self._flush_file(state)
        offset = 0 if state.truncated else state.complete
        return (info.st_dev, info.st_ino, offset)

    def _scan_gzip(self, path, fd, info):
        """Scan a gzip file; corrupt or truncated data ends it with a notice."""
        state = _FileState(self, path, False)
        carry, read = b"", 0
        try:
            for out, read_now in gzip_chunks(fd, info.st_size, self.max_block):
                offset = 0
                while offset < len(out) and not (self.full and not state.waiting()):
                    started = time.monotonic()
                    part = out[offset:offset + self.block]
                    offset += len(part)
                    data = carry + part if carry else part
                    pieces, consumed, _ = state.splitter.split(data, False)
                    carry = data[consumed:]
                    for piece in pieces:
                        yield from state.piece(piece)
                    self._pace(time.monotonic() - started)
                    if offset < len(out):
                        yield from self._tick()
                self.scanned += read_now - read
                read = read_now
                if self.full and not state.waiting():
                    break
                yield from self._tick()
        except GzipError as exc:
            problem = str(exc)
        else:
            problem = None
        for piece in state.splitter.split(carry, True)[0]:
            yield from state.piece(piece)
        yield from self._flush_file(state)
        if problem:
            yield ("notice", say("search_corrupt", path=path, problem=problem))
        self.scanned += info.st_size - read

    def _flush_file(self, state):
        """End of a file: its pending matches go out with the context they have."""
        for match in state.pending:
            self._add(state.path, match)
        state.pending.clear()
        yield from self._send()

    def _add(self, path, match):
        if path != self.path:
            self.batch, self.batch_chars, self.path = [], 0, path
        self.batch.append(match)
        self.batch_chars += len(match["line"]) + sum(map(len, match["before"])) + \
            sum(map(len, match["after"]))

    def batch_full(self):
        """Whether the batch of matches is big enough to go out now."""
        return len(self.batch) >= BATCH_MATCHES or self.batch_chars >= BATCH_CHARS

    def _send(self):
        if self.batch:
            yield ("matches", self.path, self.batch)
            self.batch, self.batch_chars = [], 0

    def _out_of_time(self):
        """Whether the time budget is spent; if so, the search ends like a full one."""
        if self.deadline is not None and not self.timed_out and self.clock() >= self.deadline:
            self.timed_out = self.full = True
        return self.timed_out

    def _tick(self):
        """Send a full batch; send progress (and the batch) when it is due."""
        self._out_of_time()
        if self.batch_full():
            yield from self._send()
        now = self.clock()
        if now - self.last_progress >= PROGRESS_EVERY:
            yield from self._send()
            self.last_progress = now
            yield ("progress", self.scanned, self.total, self.count)


class _FileState:
    """Per-file state: line count, recent lines (before-context), matches awaiting context."""

    def __init__(self, search, path, live):
        self.search = search
        self.path = path
        self.live = live
        self.lines = 0
        self.recent = collections.deque(maxlen=search.context or 1)
        self.pending = []
        self.splitter = Splitter(search.encoding, search.max_line)
        self.complete = 0
        self.truncated = False

    def waiting(self):
        """Whether some found match still waits for lines after it."""
        return bool(self.pending) and len(self.pending[-1]["after"]) < self.search.context

    def piece(self, piece):
        """Process one piece from the splitter (generator of events)."""
        if piece[0] == "line":
            yield from self._line(piece[1])
        else:
            yield from self._run(*piece[1:])

    def _line(self, text):
        search = self.search
        self._feed_after([text])
        self.lines += 1
        if not search.full and search.verify(text):
            self._found(text, list(self.recent) if search.context else [], self.lines)
        self.recent.append(text)
        self._release()
        return
        yield

    def _run(self, data, start, end):
        """Find the matches in a run of whole lines (generator of events).

        With a required literal, the run is searched as stored (UTF-8, maybe CRLF): the
        literal's bytes are in a line exactly when its decoded text holds the literal, and
        each line's text is its bytes decoded with a final CR dropped. Otherwise, or once the
        literal proves to be in most lines, the run is made CR-free UTF-8 first and searched
        with the RE2 finder.
        """
        search = self.search
        literal = search.literal
        if literal is not None and not literal.dense:
            literal.searched += end - start

            def next_hit(position):
                return literal.find(data, position, end)
            crlf = True
        else:
            if data.find(b"\r", start, end) >= 0:
                data, start, end = _without_cr(data, start, end)
            if not self._utf8_ready(data, start, end):
                data = data[start:end].decode(search.encoding, "replace").encode("utf-8")
                start, end = 0, len(data)
            finder = search.finder

            def next_hit(position):
                hit = finder.search(data, position, end)
                return -1 if hit is None else hit.start()
            crlf = False
        context = search.context
        if self.pending and self.waiting():
            self._feed_after(_lines_forward(data, start, end, context, crlf))
        verify = search.verify
        base, counted = self.lines, start
        position, candidates = start, 0
        while position < end and not search.full:
            hit = next_hit(position)
            if hit < 0 or hit >= end:
                break
            line_start = data.rfind(b"\n", start, hit) + 1 or start
            line_end = data.find(b"\n", hit, end)
            if line_end < line_start:
                line_end = end - 1
            base += count_newlines(data, counted, line_start)
            counted = line_start
            line = _text(data, line_start, line_end, crlf)
            if verify(line):
                before = _lines_back(data, start, line_start, context, crlf) if context else []
                if len(before) < context:
                    before = list(self.recent)[len(before) - context:] + before
                after = _lines_forward(data, line_end + 1, end, context, crlf) \
                    if context else []
                self._found(line, before, base + 1, after)
                self._release()
                if search.batch_full():
                    yield from search._send()
            position = line_end + 1
            candidates += 1
            if candidates % CHECK_EVERY == 0:
                self._release()
                yield from search._tick()
        self.lines = base + count_newlines(data, counted, end)
        if context:
            self.recent.extend(_lines_back(data, start, end, context, crlf))
        self._release()

    def _utf8_ready(self, data, start, end):
        """Whether `data[start:end]` can be searched as it is (it is valid UTF-8 text)."""
        if self.search.ascii_safe and data.isascii():
            return True
        if not self.search.utf8:
            return False
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def _found(self, line, before, line_no, after=None):
        search = self.search
        if search.view is not None:
            line = search.view(line)[1]
            before = [search.view(text)[1] for text in before]
            after = [search.view(text)[1] for text in after] if after is not None else None
        self.pending.append({"line_no": line_no, "line": line, "before": before,
                             "after": after if after is not None else []})
        search.count += 1
        if search.count >= search.max_matches:
            search.full = True

    def _feed_after(self, lines):
        """Give lines that follow to the matches still waiting for their after-context."""
        context = self.search.context
        if self.pending and self.search.view is not None:
            lines = [self.search.view(text)[1] for text in lines[:context]]
        for match in reversed(self.pending):
            need = context - len(match["after"])
            if need <= 0:
                break
            match["after"].extend(lines[:need])

    def _release(self):
        """Move the matches whose context is complete (in order) to the search's batch."""
        context, done = self.search.context, 0
        for match in self.pending:
            if len(match["after"]) < context:
                break
            self.search._add(self.path, match)
            done += 1
        if done:
            del self.pending[:done]


def _without_cr(data, start, end):
    block = data[start:end].replace(b"\r\n", b"\n")
    return block, 0, len(block)


def _text(data, start, end, crlf=False):
    """The text of the line data[start:end] (UTF-8); with `crlf`, a final CR is dropped."""
    if crlf and end > start and data[end - 1] == 13:
        end -= 1
    return data[start:end].decode("utf-8", "replace")


def _lines_back(data, low, stop, count, crlf=False):
    """Return up to `count` decoded lines ending just before `stop` (a line start), in order."""
    lines, line_end = [], stop - 1
    while len(lines) < count and line_end >= low:
        line_start = data.rfind(b"\n", low, line_end) + 1 or low
        lines.append(_text(data, line_start, line_end, crlf))
        line_end = line_start - 1
    lines.reverse()
    return lines


def _lines_forward(data, position, end, count, crlf=False):
    """Return up to `count` decoded lines starting at `position` (a line start)."""
    lines = []
    while len(lines) < count and position < end:
        newline = data.find(b"\n", position, end)
        if newline < 0:
            break
        lines.append(_text(data, position, newline, crlf))
        position = newline + 1
    return lines


def _ascii_safe(encoding):
    """Whether ASCII bytes decode to the same characters in `encoding` (not UTF-7, say)."""
    sample = bytes(range(128))
    try:
        return sample.decode(encoding) == sample.decode("ascii")
    except UnicodeDecodeError:
        return False


def lines_around(path, line_no, before=10, after=10, encoding="utf-8", max_line=64 * 1024,
                 opener=open_file, block=BLOCK):
    """Return [{"line_no", "line"}, ...]: the lines `line_no - before` .. `line_no + after`.

    Lines are numbered, cut and decoded as `scan` does (a `.gz` path is decompressed). Raises
    as `iter_lines_around` does.
    """
    return list(iter_lines_around(path, line_no, before, after, encoding, max_line, opener,
                                  block))


def iter_lines_around(path, line_no, before=10, after=10, encoding="utf-8",
                      max_line=64 * 1024, opener=open_file, block=BLOCK):
    """Yield {"line_no", "line"} for the lines `line_no - before` .. `line_no + after`.

    The file is read in blocks, newlines counted in C, and the lines are yielded as they are
    found, so memory stays bounded by one block and what the caller holds (up to
    `2 * MAX_AROUND + 1` lines of up to `max_line` bytes would be 320 MiB). The file is opened
    at the first `next()`; raises ValueError for a bad argument, OSError (or what `opener`
    raises) when the file cannot be read, GzipError for a damaged gzip file.
    """
    check_encoding(encoding)
    if line_no < 1 or not 0 <= before <= MAX_AROUND or not 0 <= after <= MAX_AROUND:
        raise ValueError(f"line_no must be 1 or more and before/after 0..{MAX_AROUND}")
    return _around(path, max(1, line_no - before), line_no + after, encoding, max_line,
                   opener, block)


def _around(path, low, high, encoding, max_line, opener, block):
    fd = opener(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        splitter, count = Splitter(encoding, max_line), 0
        for piece in _file_pieces(fd, info, path.endswith(".gz"), splitter,
                                  max(block, max_line + 2)):
            if piece[0] == "line":
                count += 1
                if low <= count <= high:
                    yield {"line_no": count, "line": piece[1]}
            else:
                data, start, end = piece[1:]
                size = data.count(b"\n", start, end)
                if count + size >= low:
                    raw = data[start:end - 1]
                    if b"\r" in raw:
                        raw = raw.replace(b"\r\n", b"\n")
                    parts = raw.split(b"\n")
                    first = max(low - count - 1, 0)
                    for index in range(first, min(len(parts), high - count)):
                        yield {"line_no": count + index + 1,
                               "line": parts[index].decode(encoding, "replace")}
                count += size
            if count >= high:
                break
    finally:
        os.close(fd)


def _file_pieces(fd, info, gz, splitter, block):
    """Yield the splitter's pieces for a whole file (plain or gzip), last line included."""
    if gz:
        carry = b""
        for out, _ in gzip_chunks(fd, info.st_size, block):
            data = carry + out if carry else out
            pieces, consumed, _ = splitter.split(data, False)
            carry = data[consumed:]
            yield from pieces
        yield from splitter.split(carry, True)[0]
        return
    position = 0
    while True:
        chunk = os.pread(fd, block, position)
        pieces, consumed, _ = splitter.split(chunk, len(chunk) < block)
        yield from pieces
        if len(chunk) < block or not consumed:
            return
        position += consumed
