"""The literals every match of a pattern contains, so a search can skip to them with `find`.

`required_literals(pattern)` reads an RE2 pattern with Python's own regex parser and returns
the runs of plain characters that every match must contain, or [] when it cannot tell. It is
conservative: a literal it returns is in every matching text, and anything it is unsure of
(case-insensitive matching, syntax RE2 and Python read differently, options other than the
defaults) gives []. Only the top-level concatenation counts, with plain groups opened up and
the body of a repetition that must occur at least once; alternatives, optional parts,
classes and assertions break a run.
"""

import re

import re2

try:
    import numpy
except ImportError:  # the byte counts of the sample are then taken one byte at a time
    numpy = None

try:
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # Python < 3.11
    import sre_constants
    import sre_parse

# RE2 syntax that Python parses without error but reads differently: `\1`..`\7` and `\0`
# (octal in RE2, back references or NUL in Python), POSIX classes such as `[[:alpha:]]` (a set
# and a literal `]` in Python), `x{,3}` (literal text in RE2, a repetition in Python).
DIFFERENT_SYNTAX = re.compile(r"\\[0-9]|\[:|\{,")
BREAKS = "\n\r\ufffd"  # never in a line, or not always in its stored bytes
SAMPLE = 1024 * 1024
MISS_SPACING = 2048
MISS_FLOOR = 1000
HIT_SPACING = 1024
HIT_FLOOR = 64
DEFAULT_OPTIONS = {"literal": False, "case_sensitive": True, "posix_syntax": False,
                   "never_nl": False}


def required_literals(pattern):
    """Return the literal runs (str, longest first) every match of `pattern` contains.

    `pattern` is a compiled RE2 pattern or its source (str or UTF-8 bytes). Returns [] when
    no run is certain.
    """
    if not _default_options(getattr(pattern, "options", None)):
        return []
    source = getattr(pattern, "pattern", pattern)
    try:
        if isinstance(source, bytes):
            source = source.decode("utf-8")
        if DIFFERENT_SYNTAX.search(source):
            return []
        parsed = sre_parse.parse(source)
    except (UnicodeDecodeError, re.error, RecursionError, OverflowError, ValueError):
        return []
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return []
    runs = [run for run in _runs(list(parsed)) if run]
    runs = {piece for run in runs for piece in re.split("[" + BREAKS + "]", run) if piece}
    return sorted(runs, key=lambda run: (-len(run), run))


def _default_options(options):
    if options is None:
        return True
    try:
        if options.encoding != type(options.encoding).UTF8:
            return False
        return all(getattr(options, name) == value for name, value in DEFAULT_OPTIONS.items())
    except AttributeError:
        return False


def _runs(items):
    """The literal runs of a concatenation of parsed items, each required in every match."""
    runs, current = [], []
    for op, value in _flatten(items):
        if op is sre_constants.LITERAL:
            current.append(chr(value))
            continue
        runs.append("".join(current))
        current = []
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and value[0] >= 1:
            runs.extend(_runs(list(value[2])))
    runs.append("".join(current))
    return runs


def _flatten(items):
    """Yield the items with plain groups (no flags switched) opened up, in order."""
    for op, value in items:
        if op is sre_constants.SUBPATTERN:
            _, add_flags, del_flags, body = value
            if add_flags or del_flags:
                yield sre_constants.ANY, None  # breaks the run; its contents are not read
                continue
            yield from _flatten(list(body))
        else:
            yield op, value


class LiteralFinder:
    """Finds where one of a pattern's required literals next starts in a block of UTF-8 bytes.

    It picks the literal whose rarest byte is rarest in the first text it sees and looks for
    that byte with `bytes.find` (memchr), checking the literal around each one it finds. When
    that byte turns out common (more than one miss per MISS_SPACING bytes), it searches for the
    literal with RE2 instead, which has no per-candidate cost in Python.

    The caller tells it how many bytes it searched (`searched`); when hits come more often
    than one per HIT_SPACING bytes, `dense` says so: every hit costs a line checked in Python,
    and RE2 run over the whole text is then cheaper.
    """

    def __init__(self, literals):
        self.literals = [literal.encode("utf-8") for literal in literals]
        self.literal = self.rare = self.regex = None
        self.offset = self.misses = self.covered = self.hits = self.searched = 0

    @property
    def dense(self):
        """Whether hits are frequent enough that searching for them costs more than RE2."""
        return self.hits > HIT_FLOOR and self.hits * HIT_SPACING > self.searched

    def find(self, data, position, end):
        """Return the index of the next literal starting in data[position:end], or -1."""
        if self.literal is None:
            self._choose(data, position, end)
        if self.regex is not None:
            hit = self.regex.search(data, position, end)
            if hit is None:
                return -1
            self.hits += 1
            return hit.start()
        literal, rare, offset = self.literal, self.rare, self.offset
        at = data.find(rare, position + offset, end)
        while at >= 0:
            start = at - offset
            if data.startswith(literal, start, end):
                self.covered += start - position
                self.hits += 1
                return start
            self.misses += 1
            if self.misses > MISS_FLOOR and \
                    self.misses * MISS_SPACING > self.covered + at - position:
                self.covered += at - position
                self.regex = re2.compile(re2.escape(literal))
                return self.find(data, start + 1, end)
            at = data.find(rare, at + 1, end)
        self.covered += end - position
        return -1

    def _choose(self, data, position, end):
        stop = min(end, position + SAMPLE)
        counts = _byte_counts(data, position, stop,
                              {byte for literal in self.literals for byte in literal})
        best = None
        for literal in self.literals:
            offset = min(range(len(literal)), key=lambda index: counts[literal[index]])
            score = (counts[literal[offset]], -len(literal))
            if best is None or score < best[0]:
                best = (score, literal, offset)
        _, self.literal, self.offset = best
        self.rare = self.literal[self.offset:self.offset + 1]


def _byte_counts(data, start, stop, wanted):
    """How often each byte value occurs in data[start:stop] (exact for the `wanted` ones)."""
    if stop <= start:
        return [0] * 256
    if numpy is not None:
        view = numpy.frombuffer(data, numpy.uint8, stop - start, start)
        return numpy.bincount(view, minlength=256).tolist()
    counts = [0] * 256
    for byte in wanted:
        counts[byte] = data.count(bytes((byte,)), start, stop)
    return counts
