"""A rule reads its source the way a viewer's stream does: the kind's own body, another `out`.

Every kind's body `run(out, source, options, worker)` sends what a viewer would see through
`out` (`webapp.streams.flow.Output`). `RuleOutput` stands in for it: lines (and feed
entries) go to the rule's matcher instead of a browser, `status` and `notice` messages
become the rule's state. It always has room, so the body never waits for a viewer; a body
that falls behind its source (a log written faster than it is read) skips ahead and
counts, as a stream does for a slow viewer.

A rule new to its source starts at its end, as a stream with no backlog: `ALERT_QUERY` asks
every kind for none (`lines=0` for logs, journals and containers, `entries=0` for feeds). A
rule started again goes on where its last task's reading got to (`alerts.positions`): every
kind's body notes positions (file offsets, a journal cursor, the feed entries seen).
"""

import time

ALERT_QUERY = {"lines": ["0"], "entries": ["0"]}


def source_options(kind):
    """Return the kind's options for a rule: its defaults with no backlog."""
    query = {name: value for name, value in ALERT_QUERY.items()}
    return kind.parse_options(query)


def entry_text(entry):
    """The line a feed entry stands for: its title, then its link."""
    if not isinstance(entry, dict):
        return str(entry)
    parts = [str(entry.get(name) or "") for name in ("title", "link")]
    return " ".join(part for part in parts if part)


class RuleOutput:
    """The `out` of a kind's body when a rule, not a viewer, reads the source.

    `on_lines(lines)` receives every batch; `on_state(text)` each change of what the
    source's reading says (running, a warning such as a missing file, a notice).
    """

    wants_position = True

    def __init__(self, on_lines, on_state, buffer_lines=20000, position=None):
        self.position = position  # where the lines handed to the rule end (see note_position)
        self.noted = False
        self.on_lines = on_lines
        self.on_state = on_state
        self.buffer_lines = buffer_lines
        self.window = 1
        self.dropped = 0
        self.sent_lines = 0
        self.last_sent = time.monotonic()
        self.running = ""

    def has_room(self):
        """A rule never waits for a viewer."""
        return True

    async def wait_room(self, timeout=None):
        """Never waits."""
        return True

    def drop(self, count):
        """Count lines the body skipped to catch up with its source."""
        self.dropped += int(count)

    def note_position(self, position):
        """Keep where the lines handed over so far end (the kind's value, given back to it as
        the `resume` option when the rule starts again: `alerts.positions`)."""
        self.position = position
        self.noted = True

    async def send_lines(self, batch, file=None, fields=None, levels=None, cursors=None):
        """Hand the lines to the rule."""
        if batch:
            self.sent_lines += len(batch)
            await self.on_lines(list(batch))

    async def send(self, message, final=False, reason="", close_code=None, ending=None):
        """Status and notices become the rule's state; feed entries become lines."""
        kind = message.get("type")
        if kind == "status":
            warning = message.get("warning")
            text = message.get("message", "")
            if message.get("state") == "running" and not warning:
                self.running = text
            await self.on_state(f"warning: {warning}" if warning else text)
        elif kind == "notice":
            await self.on_state(message.get("message", ""))
        elif kind == "entries":
            await self.send_lines([entry_text(entry) for entry in message.get("entries", ())])
        return True

    async def send_frame(self, message):
        """Views and search results are not what a rule reads."""
        return True

    async def notice(self, text):
        """A notice (rotated, truncated, waiting for the file) becomes the rule's state."""
        await self.on_state(str(text))

    async def heartbeat(self):
        """Nobody to tell."""

    async def flush(self):
        """Nothing is buffered."""
