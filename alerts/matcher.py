"""When a rule fires: threshold within a window, cooldown, suppressed count, resolution.

Pure: the caller gives the lines and the time (`clock`), so it is tested with a fake clock.
Memory is bounded whatever the rate: matches are counted in one-second buckets over the
window (at most `window` buckets) and at most MAX_SAMPLES sample lines are kept.

CPU is a C call per line: `line_search` tests a line against RE2 without the Python wrapper's
match object, and lines read during a cooldown (a flood) are only counted.
"""

import collections
import dataclasses
import itertools
import time

MAX_SAMPLES = 5


def line_search(regexp):
    """Return a predicate true when an RE2 pattern (`re2.compile`) is found in a line: one
    C++ call per line (webapp/streams/internals.py), the same answers as `regexp.search`."""
    from webapp.streams.internals import re2_line_search

    return re2_line_search(regexp)


@dataclasses.dataclass(frozen=True)
class Firing:
    """The rule fired: `matches` within the window, `suppressed` since the last alert."""

    matches: int
    suppressed: int
    samples: tuple


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A thresholded rule went quiet; `suppressed` matches were not alerted since it fired."""

    suppressed: int


class Matcher:
    """Counts matching lines and says when to alert.

    - A match counts in the window; when the window holds `threshold` matches and no
      cooldown runs, the rule fires (and the samples are the last matching lines).
    - For `cooldown` seconds after a firing, matches are only counted as suppressed; the
      next firing (or the resolution) reports how many.
    - With `resolve`, a rule that fired goes quiet once a whole window since its last
      firing holds fewer than `threshold` matches: `tick()` returns a Resolved once.
    """

    def __init__(self, search, threshold=1, window=60, cooldown=300, resolve=False,
                 clock=time.monotonic):
        self.search = search
        self.threshold = max(1, int(threshold))
        self.window = max(1, int(window))
        self.cooldown = max(0, int(cooldown))
        self.resolve = resolve
        self.clock = clock
        self.buckets = collections.deque()  # [second, count], oldest first
        self.in_window = 0
        self.samples = collections.deque(maxlen=MAX_SAMPLES)  # (second, line)
        self.last_fired = None
        self.suppressed = 0
        self.firing = False  # fired and not resolved yet
        self.lines_seen = 0
        self.matches_seen = 0

    def _expire(self, now):
        horizon = int(now) - self.window
        buckets = self.buckets
        while buckets and buckets[0][0] <= horizon:
            self.in_window -= buckets.popleft()[1]

    def _count(self, now, amount):
        second = int(now)
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([second, amount])
        self.in_window += amount

    def cooling(self, now):
        """True while a cooldown runs."""
        return self.last_fired is not None and now < self.last_fired + self.cooldown

    def feed(self, lines):
        """Match a batch of lines (arriving now); return the Firings it causes (0 or 1).

        A batch fires at most once, even with no cooldown: the matches after its firing are
        counted as suppressed, so a flood sends one alert per batch at most.
        """
        now = self.clock()
        self._expire(now)
        self.lines_seen += len(lines)
        if self.cooling(now):
            self._suppress(now, lines)
            return []
        events = []
        search = self.search
        for index, line in enumerate(lines):
            if not search(line):
                continue
            self.matches_seen += 1
            self._count(now, 1)
            self.samples.append((int(now), line))
            if self.in_window >= self.threshold:
                horizon = int(now) - self.window
                samples = tuple(text for second, text in self.samples if second > horizon)
                events.append(Firing(self.in_window, self.suppressed, samples))
                self.samples.clear()
                self.suppressed = 0
                self.last_fired = now
                self.firing = True
                self._suppress(now, itertools.islice(lines, index + 1, None))
                break
        return events

    def _suppress(self, now, lines):
        """Count the matching lines of a batch that cannot fire (cooldown, or already fired)."""
        search = self.search
        count = sum(1 for line in lines if search(line))
        if count:
            self.matches_seen += count
            self._count(now, count)
            self.suppressed += count

    def tick(self):
        """Return a Resolved when a thresholded rule has gone quiet, else None."""
        if not (self.resolve and self.firing):
            return None
        now = self.clock()
        self._expire(now)
        if now - self.last_fired >= self.window and self.in_window < self.threshold:
            self.firing = False
            suppressed, self.suppressed = self.suppressed, 0
            return Resolved(suppressed)
        return None
