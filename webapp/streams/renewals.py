"""One renewal round per Daphne process: every lease renewed, every viewer's access re-checked.

Each stream used to renew its own lease and re-check its own viewer's access: at 200
streams that was 30 rounds a second of four queries and two Redis calls each, and the
access checks alone were 40 % of Daphne's time. A round now covers every stream of the
process with a few queries (`access.lost_many`), one pipelined renewal and one metrics
write, every `leases.refresh_interval()`. Lines sent are published the same way: one
pipeline a second for the streams that sent any (`streams --json` and the admin read them).
"""

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async

from webapp import metrics
from webapp.streams import access, faults, leases
from webapp.streams.sessionrefresh import refresher

log = logging.getLogger("tailboard.streams")

_rounds = weakref.WeakKeyDictionary()

PUBLISH_SECONDS = 1.0


class Rounds:
    """The consumers of one event loop whose leases are renewed together."""

    def __init__(self):
        self.members = set()
        self.tally = metrics.Tally()
        self.task = None
        self.endings = set()
        self.counted_since = set()
        self.publisher = None

    def join(self, consumer):
        """Renew this consumer's lease from the next round on."""
        self.members.add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(),
                                                               name="lease renewals")

    def leave(self, consumer):
        """Stop renewing this consumer's lease (it flushes its own tally as it ends)."""
        self.members.discard(consumer)

    def counted(self, consumer):
        """Publish this consumer's lines sent with the next publication (within a second)."""
        self.counted_since.add(consumer)
        if self.publisher is None or self.publisher.done():
            self.publisher = asyncio.get_running_loop().create_task(
                self.publish_counts(), name="lines sent publication")

    async def publish_counts(self):
        """Each second, publish the lines sent by the streams that sent any, in one pipeline."""
        while self.counted_since:
            await asyncio.sleep(PUBLISH_SECONDS)
            counted, self.counted_since = self.counted_since, set()
            try:
                await leases.apublish_sent_many(leases.loop_client(),
                                                [(c.task_id, c.lines_sent) for c in counted])
            except Exception as exc:
                if not isinstance(exc, faults.OUTSIDE):
                    faults.contained(log, "could not publish lines sent")
                log.warning("could not publish lines sent (next second): %s", exc)
                self.counted_since |= counted

    async def run(self):
        """Run rounds while anyone is a member, one per refresh interval."""
        while self.members:
            await asyncio.sleep(leases.refresh_interval())
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, faults.OUTSIDE):
                    faults.contained(log, "lease renewal round failed")
                log.warning("lease renewal round failed (retried next round): %s", exc)
        await self.tally.aflush(leases.loop_client())

    async def round(self):
        """Re-check access, end the streams that lost it, renew the rest, write metrics."""
        members = [c for c in self.members if not c.finished]
        if not members:
            return
        refresher().poke(c.scope.get("session") for c in members)
        verdicts = await database_sync_to_async(access.lost_many)(
            [(c.user.pk, c.scope.get("session"), c.source) for c in members])
        kept = []
        for consumer, lost in zip(members, verdicts, strict=False):
            if lost is not None:
                self.leave(consumer)
                ending = asyncio.ensure_future(consumer.end_access(lost))
                self.endings.add(ending)
                ending.add_done_callback(self.endings.discard)
            elif not consumer.finished:
                kept.append(consumer)
        client = leases.loop_client()
        await leases.arenew_many(client, [(c.task_id, c.channel_name, c.user.pk, c.lines_sent)
                                          for c in kept])
        for consumer in kept:
            self.tally.absorb(consumer.tally)
        await self.tally.aflush(client)


def rounds():
    """Return the running loop's renewal rounds (Daphne: one per process)."""
    loop = asyncio.get_running_loop()
    found = _rounds.get(loop)
    if found is None:
        found = _rounds[loop] = Rounds()
    return found
