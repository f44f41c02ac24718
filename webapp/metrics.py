"""Counters and histograms shared by every process, kept in Redis (one hash per metric).

Daphne processes and Celery worker processes on many hosts all add to the same figures, so
they live in Redis rather than in a process's memory: one hash `tailboard:metrics:<name>`
per metric, one field per label set (the label values as a JSON array, in the metric's
label order). A counter field holds an integer (HINCRBY). A histogram keeps, per label set,
one field per bucket counting the observations that fell into it (not cumulative: one
increment per observation), a `sum` field (HINCRBYFLOAT) and a `count` field, written
together in one MULTI/EXEC. `webapp.metrics_view` reads them back for `/metrics`.

Record functions take the caller's Redis client (sync `redis.Redis` or `redis.asyncio`)
and never raise (except cancellation): a failed or invalid write is logged, at most once a
minute per metric, and dropped. `Tally` gathers counts in memory for hot paths and writes
them in one pipeline when flushed.
"""

import dataclasses
import json
import logging
import math
import time

from webapp.streams import faults

log = logging.getLogger("tailboard.metrics")

KEY_PREFIX = "tailboard:metrics:"
MAX_LABEL_CHARS = 100
WARN_EVERY_SECONDS = 60.0
SUM_FIELD = "sum"
COUNT_FIELD = "count"

FEED_FETCH_RESULTS = ("ok", "not_modified", "error", "gone")


class MetricError(ValueError):
    """A record call named an unknown metric or gave bad labels or a bad value."""


def _endings():
    from webapp.models import Ending

    return set(Ending.values)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric: its kind ("counter" or "histogram"), help text, label names, buckets.

    `allowed` maps a label name to a function returning the set of values it may take
    (checked at record time); other labels take any text, cut to MAX_LABEL_CHARS.
    """

    name: str
    type: str
    help: str
    labels: tuple
    buckets: tuple = ()
    allowed: tuple = ()

    @property
    def key(self):
        """Return the Redis hash holding this metric."""
        return KEY_PREFIX + self.name


CONNECT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

METRICS = {metric.name: metric for metric in (
    Metric("lines_sent", "counter", "Log lines sent to viewers.", ("kind", "queue")),
    Metric("entries_sent", "counter", "Feed entries sent to viewers.", ("kind", "queue")),
    Metric("dropped_lines", "counter",
           "Lines not delivered because the viewer fell behind (counted by the task).",
           ("kind", "queue")),
    Metric("stream_ends", "counter", "Streams ended, by how they ended.", ("kind", "ending"),
           allowed=(("ending", _endings),)),
    Metric("streams_refused", "counter",
           "Stream connections refused before a task started, by close code.",
           ("kind", "code")),
    Metric("feed_fetches", "counter", "Upstream feed fetches, by result.", ("result",),
           allowed=(("result", lambda: set(FEED_FETCH_RESULTS)),)),
    Metric("connect_to_running_seconds", "histogram",
           "Seconds from a stream's WebSocket connect to its task running on a worker.",
           ("kind", "queue"), buckets=CONNECT_BUCKETS),
    Metric("alert_events", "counter", "Alert rule events (firing, resolved, test), by rule.",
           ("rule", "event")),
    Metric("alert_deliveries", "counter",
           "Alert messages to destinations, by result (sent, failed, refused).", ("result",)),
)}


def metric(name, type_):
    """Return the registered metric `name` of this type, or raise MetricError."""
    found = METRICS.get(name)
    if found is None:
        raise MetricError(f"no such metric {name!r}")
    if found.type != type_:
        raise MetricError(f"metric {name!r} is a {found.type}, not a {type_}")
    return found


def label_field(found, labels):
    """Return the hash field for these label values (a JSON array); raise MetricError."""
    if not isinstance(labels, dict) or set(labels) != set(found.labels):
        given = sorted(labels) if isinstance(labels, dict) else type(labels).__name__
        raise MetricError(f"metric {found.name!r} takes labels {list(found.labels)}, "
                          f"got {given}")
    values = [str(labels[name])[:MAX_LABEL_CHARS] for name in found.labels]
    for name, allowed in found.allowed:
        value = values[found.labels.index(name)]
        if value not in allowed():
            raise MetricError(f"metric {found.name!r}: {value!r} is not a {name}")
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def parse_field(found, field):
    """Return the label values a hash field encodes, or None when it is not one of ours."""
    try:
        values = json.loads(field)
    except (TypeError, ValueError):
        return None
    if (not isinstance(values, list) or len(values) != len(found.labels)
            or not all(isinstance(value, str) for value in values)):
        return None
    return tuple(values)


def bucket_field(labels_field, upper):
    """Return the field counting one label set's observations in the bucket `upper`."""
    return f"{labels_field}|{upper!r}"


def counter_amount(amount):
    """Return a counter increment as an int; raise MetricError unless it is an int >= 0."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise MetricError(f"a counter takes an int >= 0, got {amount!r}")
    return amount


def observation(value):
    """Return an observed value as a float; raise MetricError unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricError(f"an observation is a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise MetricError(f"an observation is finite and >= 0, got {value!r}")
    return value


def counter_commands(name, labels, amount):
    """Return the (command, args) writes of a counter increment; raise MetricError."""
    found = metric(name, "counter")
    return [("hincrby", (found.key, label_field(found, labels), counter_amount(amount)))]


def histogram_commands(name, labels, value):
    """Return the (command, args) writes of one histogram observation; raise MetricError."""
    found = metric(name, "histogram")
    field = label_field(found, labels)
    value = observation(value)
    commands = [("hincrby", (found.key, f"{field}|{COUNT_FIELD}", 1)),
                ("hincrbyfloat", (found.key, f"{field}|{SUM_FIELD}", value))]
    upper = next((bound for bound in found.buckets if value <= bound), None)
    if upper is not None:
        commands.append(("hincrby", (found.key, bucket_field(field, upper), 1)))
    return commands


_last_warning = {}


def warn(name, exc):
    """Log a failed write, at most once per WARN_EVERY_SECONDS for each metric."""
    now = time.monotonic()
    if now - _last_warning.get(name, -math.inf) >= WARN_EVERY_SECONDS:
        _last_warning[name] = now
        log.warning("metrics: could not record %s: %s: %s", name, type(exc).__name__, exc)
    else:
        log.debug("metrics: could not record %s: %s", name, exc)


def _write(client, name, build, *args):
    try:
        commands = build(*args)
        pipe = client.pipeline(transaction=len(commands) > 1)
        for command, command_args in commands:
            getattr(pipe, command)(*command_args)
        pipe.execute()
        return True
    except faults.OUTSIDE as exc:
        warn(name, exc)
        return False
    except Exception:  # a MetricError or worse: a bug in the caller
        faults.contained(log, "metrics: could not record %s", name)
        return False


async def _awrite(client, name, build, *args):
    try:
        commands = build(*args)
        pipe = client.pipeline(transaction=len(commands) > 1)
        for command, command_args in commands:
            getattr(pipe, command)(*command_args)
        await pipe.execute()
        return True
    except faults.OUTSIDE as exc:
        warn(name, exc)
        return False
    except Exception:  # a MetricError or worse: a bug in the caller
        faults.contained(log, "metrics: could not record %s", name)
        return False


def record(client, name, labels, amount=1):
    """Add `amount` (an int >= 0) to counter `name` for these labels; return whether written.

    Never raises: a bad call or an unreachable Redis is logged and the count dropped.
    """
    return _write(client, name, counter_commands, name, labels, amount)


async def arecord(client, name, labels, amount=1):
    """Async twin of record() on a redis.asyncio client."""
    return await _awrite(client, name, counter_commands, name, labels, amount)


def observe(client, name, labels, value):
    """Add one observation (a number >= 0) to histogram `name`; return whether written.

    Bucket, sum and count change together (MULTI/EXEC). Never raises, like record().
    """
    return _write(client, name, histogram_commands, name, labels, value)


async def aobserve(client, name, labels, value):
    """Async twin of observe() on a redis.asyncio client."""
    return await _awrite(client, name, histogram_commands, name, labels, value)


class Tally:
    """Counter increments gathered in memory, written in one pipeline by flush()/aflush().

    For hot paths (a count per frame): add() does no I/O. A failed flush keeps the counts
    for the next one, so a short Redis outage loses nothing; counts are ints, one per
    (metric, label set), so what waits stays small.
    """

    def __init__(self):
        self.pending = {}

    def add(self, name, labels, amount=1):
        """Add to a counter in memory; a bad call is logged and ignored (never raises)."""
        try:
            found = metric(name, "counter")
            key = (found.key, label_field(found, labels))
            amount = counter_amount(amount)
        except MetricError as exc:
            warn(name, exc)
            return
        if amount:
            self.pending[key] = self.pending.get(key, 0) + amount

    def absorb(self, other):
        """Move another tally's pending counts into this one."""
        for key, amount in other._take().items():
            self.pending[key] = self.pending.get(key, 0) + amount

    def _take(self):
        taken, self.pending = self.pending, {}
        return taken

    def _restore(self, taken, exc):
        for key, amount in taken.items():
            self.pending[key] = self.pending.get(key, 0) + amount
        warn("tally", exc)

    def _pipeline(self, client, taken):
        pipe = client.pipeline(transaction=True)
        for (key, field), amount in taken.items():
            pipe.hincrby(key, field, amount)
        return pipe

    def flush(self, client):
        """Write what was added since the last flush (sync client); return whether written."""
        taken = self._take()
        if not taken:
            return True
        try:
            self._pipeline(client, taken).execute()
            return True
        except Exception as exc:
            self._restore(taken, exc)
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "metrics: could not flush")
            return False

    async def aflush(self, client):
        """Async twin of flush() on a redis.asyncio client."""
        taken = self._take()
        if not taken:
            return True
        try:
            await self._pipeline(client, taken).execute()
            return True
        except BaseException as exc:
            self._restore(taken, exc)
            if not isinstance(exc, Exception):
                raise
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "metrics: could not flush")
            return False


def _text(raw):
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _number(raw):
    try:
        value = float(_text(raw))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_counter(found, raw):
    """Return {label values: total} from a counter's raw hash (unreadable fields skipped)."""
    totals = {}
    for field, value in raw.items():
        labels, number = parse_field(found, _text(field)), _number(value)
        if labels is not None and number is not None:
            totals[labels] = number
    return totals


def parse_histogram(found, raw):
    """Return {label values: (cumulative [(le, count)] ending with "+Inf", sum)} from a
    histogram's raw hash; fields of unknown buckets count only towards +Inf."""
    parts = {}
    for field, value in raw.items():
        head, _, part = _text(field).rpartition("|")
        labels, number = parse_field(found, head), _number(value)
        if labels is not None and number is not None:
            parts.setdefault(labels, {})[part] = number
    series = {}
    for labels, found_parts in parts.items():
        buckets, total = [], 0.0
        for upper in found.buckets:
            total += found_parts.get(repr(upper), 0.0)
            buckets.append((repr(upper), total))
        buckets.append(("+Inf", max(total, found_parts.get(COUNT_FIELD, 0.0))))
        series[labels] = (buckets, found_parts.get(SUM_FIELD, 0.0))
    return series


def parse_snapshot(raws):
    """Return {metric name: parsed series} from the raw hashes in METRICS order.

    A metric whose read failed (an exception in `raws`, e.g. its key is not a hash) is
    logged and left out; the others are still returned.
    """
    parsers = {"counter": parse_counter, "histogram": parse_histogram}
    series = {}
    for found, raw in zip(METRICS.values(), raws, strict=False):
        if isinstance(raw, Exception):
            log.error("metrics: could not read %s: %s: %s", found.key, type(raw).__name__, raw)
            continue
        series[found.name] = parsers[found.type](found, raw or {})
    return series


def snapshot(client):
    """Read every metric from Redis in one round trip (sync client); see parse_snapshot()."""
    pipe = client.pipeline(transaction=False)
    for found in METRICS.values():
        pipe.hgetall(found.key)
    return parse_snapshot(pipe.execute(raise_on_error=False))


async def asnapshot(client):
    """Async twin of snapshot() on a redis.asyncio client."""
    pipe = client.pipeline(transaction=False)
    for found in METRICS.values():
        pipe.hgetall(found.key)
    return parse_snapshot(await pipe.execute(raise_on_error=False))


def feed_fetch_result(state):
    """Return the `feed_fetches` result of a feed state: ok, not_modified, error or gone."""
    if state.outcome == "ok" and state.not_modified:
        return "not_modified"
    return state.outcome if state.outcome in FEED_FETCH_RESULTS else "error"
