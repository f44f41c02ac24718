"""Flow control between a task and its viewer: credit (acks), bounded buffering, drops.

The task sends numbered `lines` frames; at most `window` are unacknowledged. What finds no
credit waits in a bounded buffer, so a viewer who is behind makes the producer wait (the lag
stays on disk) and nothing grows without bound.
"""

import asyncio
import collections
import logging
import time

from channels.exceptions import ChannelFull

from webapp.streams import protocol

log = logging.getLogger("tailboard.tasks")


class Output:
    """Sends protocol messages to one consumer's channel with credit-based flow control.

    Data frames (`lines`) are numbered; at most `window` of them are in flight until the
    viewer acknowledges them. Lines that find no credit wait in a bounded buffer; when it
    overflows the oldest lines are dropped and counted, and the count is sent as `dropped`
    before the next lines, so nothing is lost silently and nothing grows without bound.
    """

    def __init__(self, layer, channel_name, window=8, buffer_lines=20000):
        self.layer = layer
        self.channel_name = channel_name
        self.window = window
        self.buffer_lines = buffer_lines
        self.next_seq = 0
        self.acked = -1
        self.pending = []
        self.runs = collections.deque()  # [(file, fields), count] of the pending lines, in order
        self.levels = None  # per pending line, once a kind gives levels (see send_lines)
        self.cursors = None  # per pending line, once a kind gives cursors
        self.dropped = 0
        self.sent_lines = 0
        self.lock = asyncio.Lock()
        self.room = asyncio.Event()
        self.room.set()
        self.drained = asyncio.Event()
        self.drained.set()
        self.last_sent = time.monotonic()  # any message tells the consumer the task lives

    @property
    def in_flight(self):
        """Frames sent and not yet acknowledged."""
        return self.next_seq - 1 - self.acked

    async def send(self, message, final=False, reason="", close_code=None, ending=None):
        """Send one control message after the lines before it; False when the channel is full.

        Control messages are not counted against the window, but a non-final one waits
        until the lines queued before it have gone out, so the viewer sees them in order.
        """
        if self.pending and not final:
            await self.drained.wait()
        return await self._send_now(message, final, reason, close_code, ending)

    async def _send_now(self, message, final=False, reason="", close_code=None, ending=None):
        try:
            await self.layer.send(self.channel_name, protocol.frame_event(
                message, final=final, reason=reason, close_code=close_code, ending=ending))
            self.last_sent = time.monotonic()
        except ChannelFull:
            log.warning("channel %s is full; a %s message was not delivered",
                        self.channel_name, message.get("type"))
            return False
        return True

    async def send_frame(self, message):
        """Send a data message (matches, a view of lines) inside the window, numbered by seq.

        Waits for credit like lines do, after the lines queued before it, so a viewer who is
        behind holds the producer back instead of the server's memory.
        """
        if self.pending:
            await self.drained.wait()
        while self.in_flight >= self.window:
            self.room.clear()
            await self.room.wait()
        async with self.lock:
            seq = self.next_seq
            text = protocol.encode({**message, "seq": seq})
            await self.layer.send(self.channel_name, protocol.data_frame_event(
                text, seq, protocol.lines_in(message)))
            self.last_sent = time.monotonic()
            self.next_seq += 1

    def has_room(self):
        """True when the viewer can take more now: a producer should read more only then."""
        return self.in_flight < self.window or len(self.pending) < self.buffer_lines // 2

    async def wait_room(self, timeout=None):
        """Wait until the viewer has room again (or the timeout passes); return has_room()."""
        if not self.has_room():
            self.room.clear()
            try:
                await asyncio.wait_for(self.room.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.has_room()

    def drop(self, count):
        """Count lines the producer skipped for this viewer; reported before the next lines."""
        self.dropped += count

    # A viewer's stream does not resume from where its reading was (its reconnects resume
    # from what the page holds); an alert rule's reader does (`alerts.reader.RuleOutput`).
    wants_position = False

    def note_position(self, position):
        """Where the lines sent so far end in the source (a kind's own JSON-able value, given
        back as the `resume` option): nothing to keep for a viewer."""

    async def send_lines(self, batch, file=None, fields=None, levels=None, cursors=None):
        """Queue lines (of one file, for multi-file streams) and send what the window allows.

        `fields`: extra frame fields the lines share (a kind's, e.g. a container's output
        `stream`); lines with other fields go out in other frames. `levels` and `cursors`:
        values of each line, lists parallel to `batch` (see `protocol.lines_frames`).
        """
        if not batch:
            return
        before = len(self.pending)
        self.pending.extend(batch)
        self.levels = extend_column(self.levels, levels, before, len(batch))
        self.cursors = extend_column(self.cursors, cursors, before, len(batch))
        key = (file, tuple(sorted(fields.items())) if fields else ())
        if self.runs and self.runs[-1][0] == key:
            self.runs[-1][1] += len(batch)
        else:
            self.runs.append([key, len(batch)])
        self.drained.clear()
        overflow = len(self.pending) - self.buffer_lines
        if overflow > 0:
            self._take(overflow)
            self.dropped += overflow
            self._forget(overflow)
        await self.flush()

    def _take(self, count):
        """Remove the first `count` pending lines (and their per-line values)."""
        del self.pending[:count]
        for column in (self.levels, self.cursors):
            if column is not None:
                del column[:count]

    def _forget(self, count):
        """Take `count` lines off the front of the runs."""
        while count and self.runs:
            take = min(count, self.runs[0][1])
            self.runs[0][1] -= take
            count -= take
            if not self.runs[0][1]:
                self.runs.popleft()

    async def flush(self):
        """Send buffered lines while the viewer has credit."""
        async with self.lock:
            while self.pending and self.in_flight < self.window:
                if self.dropped:
                    if not await self._send_now(protocol.dropped(self.dropped)):
                        return
                    self.dropped = 0
                (file, fields), run = self.runs[0]
                seq, count, text = next(protocol.lines_frames(
                    self.pending[:run] if run < len(self.pending) else self.pending,
                    self.next_seq, file=file, fields=dict(fields),
                    levels=self.levels[:run] if self.levels is not None else None,
                    cursors=self.cursors[:run] if self.cursors is not None else None))
                try:
                    await self.layer.send(self.channel_name,
                                          protocol.data_frame_event(text, seq, count))
                except ChannelFull:
                    log.warning("channel %s is full; %d lines wait for the next flush",
                                self.channel_name, len(self.pending))
                    return
                self.last_sent = time.monotonic()
                self._take(count)
                self._forget(count)
                self.next_seq += 1
                self.sent_lines += count
            if not self.pending:
                self.drained.set()

    async def acknowledge(self, seq):
        """Record the viewer's credit (cumulative) and send what was waiting."""
        if seq > self.acked:
            self.acked = min(seq, self.next_seq - 1)
            if self.pending:
                await self.flush()
            if self.has_room():
                self.room.set()

    async def notice(self, text):
        """Send a notice (best effort)."""
        await self.send(protocol.notice(text))

    async def heartbeat(self):
        """Tell the consumer the task is alive (best effort)."""
        try:
            await self.layer.send(self.channel_name, protocol.heartbeat_event())
            self.last_sent = time.monotonic()
        except ChannelFull:
            pass


def extend_column(column, values, before, count):
    """Extend a per-line column by `values` (None: no value for these `count` lines).

    The column exists once some lines have values: None until then, padded for the
    `before` lines already pending.
    """
    if values is None and column is None:
        return None
    if values is not None and len(values) != count:
        raise ValueError(f"{len(values)} per-line values for {count} lines")
    if column is None:
        column = [None] * before
    column.extend(values if values is not None else [None] * count)
    return column


async def receive_acks(layer, ack_channel, out):
    """Apply the consumer's acks to the output until cancelled."""
    while True:
        event = await layer.receive(ack_channel)
        if event.get("type") == protocol.EVENT_ACK:
            await out.acknowledge(int(event.get("seq", -1)))
