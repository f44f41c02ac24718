"""One rule's task body: read the source as a viewer would, match, fire, keep the lease.

Five coroutines on the task's loop: the kind's body reading the source through a
`RuleOutput` (restarted after a pause if it ends, say a feed that went away), from where the
rule's last task got to when it read this source (`alerts.positions`); a ticker that lets the
matcher notice a rule gone quiet; the keeper that renews the lease (and ends the task when the
lease is lost or the rule was disabled or deleted); the sender, which records and delivers
firings one after the other, so reading never waits for a delivery; and the rememberer, which
saves where the reading got to once the firings before it are recorded. A firing is recorded
and sent only while this task holds the rule's lease.
"""

import asyncio
import concurrent.futures
import logging

from django.db import connections
from django.utils import timezone

from alerts import delivery, leases, positions
from alerts.matcher import Firing, Matcher, Resolved, line_search
from alerts.models import AlertEvent, AlertRule, clip_samples
from alerts.reader import RuleOutput, source_options
from webapp.streams import faults
from webapp.streams import leases as stream_leases
from webapp.streams.aio import cancel_and_wait
from webapp.streams.task import StreamEnded

log = logging.getLogger("tailboard.alerts")

RESTART_PAUSE = 10.0
TICK_SECONDS = 1.0
MAX_QUEUED = 100
MAX_STATE = 300


class Threads:
    """Two threads of the rule's own for blocking work: one for the database (state, checks),
    one for recording and delivering events (which may take a minute of retries), so neither
    waits for the other and the task holds at most two database connections."""

    def __init__(self):
        self.db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alert-db")
        self.send = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alert-send")

    async def run(self, executor, function, *args):
        """Run `function(*args)` in one of the threads; return its result."""
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    def close(self):
        """Close each thread's database connection and let the threads go."""
        for executor in (self.db, self.send):
            executor.submit(connections.close_all)
            executor.shutdown(wait=False)


class LeaseLost(Exception):
    """Another task holds the rule's lease (or nobody does): this one stops."""


def title_of(rule, event):
    """The title of an alert message."""
    if isinstance(event, Resolved):
        return f"[Tailboard] resolved: {rule.name}"
    return f"[Tailboard] alert: {rule.name}"


def body_of(rule, event, source_label):
    """The text of an alert message (plain text: samples as they were read)."""
    if isinstance(event, Resolved):
        text = rule.resolved_message or "quiet again"
        extra = f"\n({event.suppressed} matches during the cooldown were not alerted.)" \
            if event.suppressed else ""
        return f"{text}\nRule {rule.name} on {source_label}.{extra}"
    head = (f"{event.matches} lines matching {rule.pattern!r} within {rule.window} s "
            f"on {source_label}.")
    if event.suppressed:
        head += f"\n{event.suppressed} more matched during the cooldown and were not alerted."
    samples = "\n".join(f"> {line}" for line in clip_samples(event.samples))
    return f"{head}\n{samples}" if samples else head


def record_and_send(rule_id, event, worker):
    """Record the event, deliver it to every destination, store the results; return it."""
    rule = AlertRule.objects.filter(pk=rule_id).first()
    if rule is None:
        return None
    source_label = rule.source_label
    if isinstance(event, Firing):
        record = AlertEvent.objects.create(
            rule=rule, event=AlertEvent.FIRING, matches=event.matches,
            suppressed=event.suppressed, samples=clip_samples(event.samples), worker=worker)
    else:
        record = AlertEvent.objects.create(rule=rule, event=AlertEvent.RESOLVED,
                                           suppressed=event.suppressed, worker=worker)
    targets = [(destination.name, destination.url) for destination in rule.destinations.all()]
    record.results = delivery.deliver(targets, title_of(rule, event),
                                      body_of(rule, event, source_label))
    record.save(update_fields=["results"])
    count_event(record)
    log.info("alert rule %s (%s) %s: %s", rule.pk, rule.name, record.event, record.results)
    return record


def send_test(rule, worker="admin"):
    """Send a test message to the rule's destinations, record it; return {name: result}."""
    targets = [(destination.name, destination.url) for destination in rule.destinations.all()]
    results = delivery.deliver(
        targets, f"[Tailboard] test: {rule.name}",
        f"A test of alert rule {rule.name} on {rule.source_label} "
        f"(pattern {rule.pattern!r}). Nothing matched: this message only checks delivery.")
    record = AlertEvent.objects.create(rule=rule, event=AlertEvent.TEST, results=results,
                                       worker=worker)
    count_event(record)
    return results


def count_event(record):
    """Count the event and its deliveries in /metrics."""
    from webapp import metrics

    client = stream_leases.sync_client()
    metrics.record(client, "alert_events", {"rule": record.rule.name, "event": record.event})
    for result in record.results.values():
        outcome = "sent" if result == delivery.SENT else result.split(":", 1)[0].split()[0]
        metrics.record(client, "alert_deliveries", {"result": outcome})


def set_state(rule_id, text):
    """Store what the rule's reading says now (a missing file, running, an error)."""
    AlertRule.objects.filter(pk=rule_id).update(state=str(text)[:MAX_STATE],
                                                state_changed=timezone.now())


class RuleRun:
    """The running rule: its matcher, its queue of events, its state."""

    def __init__(self, rule, task_id, worker, redis, threads):
        self.rule = rule
        self.threads = threads
        self.task_id = task_id
        self.worker = worker
        self.redis = redis
        from tailf.options import compile_grep

        self.matcher = Matcher(line_search(compile_grep(rule.pattern, "pattern")), rule.threshold,
                               rule.window, rule.cooldown, bool(rule.resolved_message))
        self.events = asyncio.Queue(MAX_QUEUED)
        self.state = None
        self.lost = 0
        self.out = None  # the RuleOutput of the body reading now
        self.sending = False
        self.saved = None
        self.forget = False  # stopped on purpose: the position goes (alerts.positions)

    async def on_lines(self, lines):
        """Match a batch; queue what fires (a full queue counts the event as lost)."""
        for event in self.matcher.feed(lines):
            self.queue(event)

    def queue(self, event):
        """Queue one event for the sender."""
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1
            if self.lost in (1, 10, 100) or self.lost % 1000 == 0:
                log.error("alert rule %s: %s events already wait for their delivery; %s "
                          "dropped so far (raise its cooldown)", self.rule.pk, MAX_QUEUED,
                          self.lost)

    async def on_state(self, text):
        """Record a new state text (only when it changes)."""
        if text and text != self.state:
            self.state = text
            await self.threads.run(self.threads.db, set_state, self.rule.pk, text)

    async def read(self, kind, source):
        """Run the kind's body on a RuleOutput; after it ends, say why and start it again.

        It goes on from the position the rule's last task saved for this source, then from
        where this reading got to; a reading that fails before it reads anything starts the
        next one at the source's end (a position the kind no longer takes is not tried twice).
        """
        options = source_options(kind)
        try:
            resume = await positions.load(self.redis, self.rule.pk, self.rule.kind, source.pk)
        except faults.OUTSIDE as exc:
            log.warning("alert rule %s: could not read where its last task's reading got to "
                        "(reading from the source's end): %s", self.rule.pk, exc)
            resume = None
        if resume:
            log.info("alert rule %s: going on where its last task's reading got to",
                     self.rule.pk)
        self.saved = resume
        while True:
            out = self.out = RuleOutput(self.on_lines, self.on_state, position=resume)
            try:
                await kind.run(out, source, {**options, "resume": resume} if resume else options,
                               self.worker)
                why = "the source ended"
            except StreamEnded as end:
                why = end.message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, faults.OUTSIDE):
                    faults.contained(log, "alert rule %s: reading %s failed", self.rule.pk, source)
                log.warning("alert rule %s: reading %s failed: %r", self.rule.pk, source, exc)
                why = f"reading failed: {type(exc).__name__}: {exc}"
            if resume and not out.noted:
                log.warning("alert rule %s: reading from its saved position failed; reading "
                            "from the source's end next", self.rule.pk)
            resume = out.position if out.noted else None
            await self.on_state(f"error: {why}; reading again in {RESTART_PAUSE:.0f} s")
            await asyncio.sleep(RESTART_PAUSE)

    async def remember(self):
        """Save where the reading got to, every SAVE_SECONDS (see `save_position`)."""
        while True:
            await asyncio.sleep(positions.SAVE_SECONDS)
            await self.save_position()

    async def save_position(self):
        """Save the reading's position once every firing of the lines before it is recorded
        (nothing queued, nothing being sent) and while this task holds the lease."""
        out = self.out
        if out is None or not out.noted or out.position == self.saved:
            return
        if self.sending or not self.events.empty():
            return
        position = out.position
        if await positions.save(self.redis, self.rule.pk, self.task_id, self.rule.kind,
                                self.rule.source_id, position):
            self.saved = position

    async def tick(self):
        """Let the matcher notice a rule gone quiet."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            event = self.matcher.tick()
            if event is not None:
                self.queue(event)

    async def keep(self):
        """Renew the lease; return (ending the task) once it is lost or the rule is off."""
        while True:
            await asyncio.sleep(leases.renew_interval())
            if not await leases.arenew(self.redis, self.rule.pk, self.task_id):
                return "its lease is held by another task or lapsed"
            enabled = await self.threads.run(self.threads.db, rule_enabled, self.rule.pk)
            if not enabled:
                self.forget = True
                return "the rule or its source was disabled or deleted"

    async def send(self):
        """Record and deliver queued events one by one, only while the lease is held."""
        while True:
            event = await self.events.get()
            self.sending = True
            try:
                if not await leases.arenew(self.redis, self.rule.pk, self.task_id):
                    raise LeaseLost("lease lost before a firing: not sent (another task owns it)")
                await self.threads.run(self.threads.send, record_and_send, self.rule.pk, event,
                                       self.worker)
            finally:
                self.sending = False


def rule_enabled(rule_id):
    """True when the rule exists and is enabled, and so is its source."""
    rule = AlertRule.objects.filter(pk=rule_id, enabled=True).first()
    source = rule.load_source() if rule else None
    return bool(source and source.enabled)


def load(rule_id):
    """Return (rule, kind, source) or raise LookupError saying what is missing."""
    rule = AlertRule.objects.filter(pk=rule_id).first()
    if rule is None or not rule.enabled:
        raise LookupError(f"alert rule {rule_id} no longer exists or is disabled")
    kind = rule.kind_entry
    source = rule.load_source()
    if source is None:
        raise LookupError(f"its {rule.kind} source {rule.source_id} no longer exists")
    if not source.enabled:
        raise LookupError(f"its {rule.kind} source {source.name} is disabled")
    return rule, kind, source


async def run(rule_id, task_id, worker, stopped):
    """Run one rule until revoked (`stopped` set), its lease is lost, or it is turned off.

    Returns why it ended.
    """
    redis = stream_leases.async_client()
    threads = Threads()
    parts = []
    running = None
    try:
        if not await leases.arenew(redis, rule_id, task_id):
            return "not started: another task holds the rule's lease, or it lapsed"
        try:
            rule, kind, source = await threads.run(threads.db, load, rule_id)
        except LookupError as exc:
            await threads.run(threads.db, set_state, rule_id, f"error: {exc}")
            await positions.aforget(redis, rule_id)
            return f"not started: {exc}"
        running = RuleRun(rule, task_id, worker, redis, threads)
        await running.on_state(f"starting on {worker}")
        parts = [asyncio.ensure_future(coro) for coro in (
            running.read(kind, source), running.tick(), running.keep(), running.send(),
            running.remember(), stopped.wait())]
        done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        finished = done.pop()
        if finished is parts[-1]:
            return "revoked"
        try:
            why = finished.result()
        except LeaseLost as exc:
            why = str(exc)
        return f"ended: {why}"
    finally:
        for part in parts:
            await cancel_and_wait(part)
        if running is not None:
            try:
                if running.forget:
                    await positions.aforget(redis, rule_id)
                else:
                    await running.save_position()  # what was read since the last save
            except faults.OUTSIDE as exc:
                log.warning("alert rule %s: could not save where its reading got to: %s",
                            rule_id, exc)
        try:
            await leases.arelease(redis, rule_id, task_id)
        except faults.OUTSIDE as exc:
            log.warning("alert rule %s: could not release its lease: %s", rule_id, exc)
        await redis.aclose()
        threads.close()
