"""The wire protocol: every message between task, consumer and browser is built here."""

import json

from webapp.streams.text import fields, say

# Close codes (docs/protocol.md, "Close codes").
CLOSE_NORMAL = 1000
CLOSE_SERVER_ERROR = 4500  # autobahn (Daphne) only sends 1000 or 3000-4999
CLOSE_BAD_OPTION = 4400
CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_SOURCE = 4404
CLOSE_TOO_MANY = 4429

# Daphne closes the socket above 1 MiB; keep every frame well under it.
MAX_FRAME_BYTES = 1024 * 1024 - 1024

CLOSE_GONE = 4410  # the stream ended for good (feed gone, source removed): do not reconnect
CLOSE_WORKER_LOST = 4503  # the worker stopped answering: a client may reconnect
CLOSE_TOO_SLOW = 4408  # the viewer did not read its socket: the server would hold too much

# Channel-layer events. Task -> consumer: stream.hello (the task's ack channel, not relayed),
# stream.frame (relayed to the browser), stream.heartbeat (not relayed).
# Consumer -> task: stream.ack (credit). Admin tools -> consumer: stream.stop.
EVENT_HELLO = "stream.hello"
EVENT_FRAME = "stream.frame"
EVENT_HEARTBEAT = "stream.heartbeat"
EVENT_ACK = "stream.ack"
EVENT_STOP = "stream.stop"


def status(state, message, **extra):
    """Build a `status` message: queued, running, stopped or error.

    A message made by `text.say` also carries its `code` and `params` (for translation), and
    so does a `warning` made by it (as `warning_code` and `warning_params`).
    """
    warning = fields(extra.get("warning"))
    if warning:
        extra["warning"] = str(extra["warning"])
        extra["warning_code"] = warning["message_code"]
        extra["warning_params"] = warning["message_params"]
    return {"type": "status", "state": state, "message": str(message), **fields(message),
            **extra}


def notice(message):
    """Build a `notice` message (rotated, truncated, waiting, recreated, ...), with its code."""
    return {"type": "notice", "message": str(message), **fields(message)}


def dropped(count):
    """Build a `dropped` message: lines not delivered because the viewer fell behind."""
    return {"type": "dropped", "count": int(count)}


def entries(items):
    """Build an `entries` message from feed entries, oldest first."""
    return {"type": "entries", "entries": list(items)}


def matches(file, items):
    """Build a `matches` message: search hits of one file, in file order, with their context."""
    return {"type": "matches", "file": file, "matches": list(items)}


def progress(scanned, total, found, done=False):
    """Build a `progress` message: bytes scanned of total (as stored) and matches so far."""
    message = {"type": "progress", "scanned": int(scanned), "total": int(total),
               "matches": int(found)}
    if done:
        message["done"] = True
    return message


def matches_messages(file, items, limit=MAX_FRAME_BYTES):
    """Split matches of one file into `matches` messages whose frames stay under the limit.

    A single match too large for a frame keeps its line and loses context lines, farthest
    first, until it fits.
    """
    chunk, size = [], len(encode(matches(file, []))) + 32
    for item in items:
        item = fit_match(item, limit - size)
        cost = len(encode(item).encode()) + 1
        if chunk and size + cost > limit:
            yield matches(file, chunk)
            chunk, size = [], len(encode(matches(file, []))) + 32
        chunk.append(item)
        size += cost
    if chunk:
        yield matches(file, chunk)


def fit_match(item, budget):
    """Return the match, with its farthest context lines dropped until it encodes in budget."""
    if len(encode(item).encode()) <= budget:
        return item
    item = {**item, "before": list(item["before"]), "after": list(item["after"])}
    while (item["before"] or item["after"]) and len(encode(item).encode()) > budget:
        if len(item["before"]) >= len(item["after"]):
            item["before"].pop(0)
        else:
            item["after"].pop()
    return item


def encode(message):
    """Serialise a message to the JSON text of one WebSocket frame."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def frame_event(message, final=False, reason="", close_code=None, ending=None):
    """Wrap a message as a channel-layer event for the consumer to relay as one frame.

    A final event also tells the consumer to close the socket (with `close_code`, by default
    4500 for an error and 1000 otherwise) and how the stream ended (`ending`, an Ending
    value, and the detail `reason`).
    """
    event = {"type": EVENT_FRAME, "text": encode(message)}
    if final:
        event["close"] = close_code or (
            CLOSE_SERVER_ERROR if message.get("state") == "error" else CLOSE_NORMAL)
        event["reason"] = reason or message.get("message", "")
        if ending:
            event["ending"] = str(ending)
    if message.get("type") == "status" and message.get("worker"):
        event["worker"] = message["worker"]
    elif message.get("type") == "entries":
        event["entries"] = len(message["entries"])
    elif message.get("type") == "dropped":
        event["dropped"] = message["count"]
    return event


def lines_in(message):
    """How many log lines a data message carries: its lines, or its matches with their context
    (a search, the view around a line)."""
    if message.get("type") == "matches":
        return sum(1 + len(item.get("before", ())) + len(item.get("after", ()))
                   for item in message["matches"])
    return len(message.get("lines", ()))


def items_sent(event):
    """What a relayed frame event adds to its stream record's `lines_sent`: its log lines, or
    its feed entries."""
    return event.get("lines", 0) + event.get("entries", 0)


def data_frame_event(text, seq, count):
    """Wrap an encoded data frame (`count` lines) that the viewer acknowledges by `seq`."""
    return {"type": EVENT_FRAME, "text": text, "seq": seq, "lines": count}


def lines_frames(batch, seq, limit=MAX_FRAME_BYTES, file=None, fields=None, levels=None,
                 cursors=None):
    """Encode lines as `lines` frames under the size limit; yield (seq, count, text).

    Each frame carries `seq`, numbered from `seq`, which a client echoes in its acks, and
    `file` (the path) when the lines come from one file of a multi-file stream; `fields` are
    further fields a kind gives its frames (a container's `stream`). Per-line values, given
    as lists parallel to `batch`: `levels` ("error", "warn", "info", "debug" or None: the
    dashboard guesses from the text), sent as the frame's `levels` when one is set; `cursors`
    (where a line's entry is, for a kind that resumes after it), the frame carrying
    `cursor`, the cursor of its last line.
    """
    extra = {"file": file} if file is not None else {}
    extra.update(fields or {})
    limit -= len(encode(extra)) if extra else 0
    start = 0
    total = len(batch)
    while start < total:
        end, budget = start, limit - 64
        while end < total and budget > 0:
            budget -= len(batch[end]) + 3
            end += 1
        while True:
            text = encode({"type": "lines", "lines": batch[start:end], "seq": seq, **extra,
                           **per_line(levels, cursors, start, end)})
            if len(text) <= limit // 4 or len(text.encode("utf-8")) <= limit or end - start == 1:
                break
            end = start + max(1, (end - start) // 2)
        yield seq, end - start, text
        seq += 1
        start = end


def per_line(levels, cursors, start, end):
    """The frame fields made of per-line values for lines start..end (see lines_frames)."""
    fields = {}
    if levels is not None and any(levels[start:end]):
        fields["levels"] = [level or "" for level in levels[start:end]]
    if cursors is not None and cursors[end - 1]:
        fields["cursor"] = cursors[end - 1]
    return fields


def hello_event(ack_channel):
    """Tell the consumer where to send acks for this task."""
    return {"type": EVENT_HELLO, "ack_channel": ack_channel}


def heartbeat_event():
    """Tell the consumer the task is alive."""
    return {"type": EVENT_HEARTBEAT}


def ack_event(seq):
    """Give the task credit: every frame up to `seq` has been taken by the viewer."""
    return {"type": EVENT_ACK, "seq": int(seq)}


def stop_event(message, ending, reason=""):
    """Ask a consumer to stop its stream (admin or limits), with the text shown to the viewer."""
    return {"type": EVENT_STOP, "message": str(message), **fields(message),
            "ending": str(ending), "reason": reason}


# What a client frame may be: its messages are a few short fields ({"action": "ack",
# "seq": 12}); anything bigger or deeper is refused before it is parsed (json.loads recurses,
# and a frame nested some thousand levels deep would raise RecursionError).
CLIENT_MAX_CHARS = 4096
CLIENT_MAX_DEPTH = 32


class ClientMessageError(ValueError):
    """A client frame refused unparsed (too large or too deeply nested): close with 4400."""


def parse_client(text):
    """Parse a client frame; return (action, data) or (None, None) when not understood.

    Raise ClientMessageError for a frame over CLIENT_MAX_CHARS characters or nested deeper
    than CLIENT_MAX_DEPTH.
    """
    if len(text) > CLIENT_MAX_CHARS:
        raise ClientMessageError(say("message_too_large", limit=CLIENT_MAX_CHARS))
    if too_deep(text, CLIENT_MAX_DEPTH):
        raise ClientMessageError(say("message_too_deep", limit=CLIENT_MAX_DEPTH))
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None, None
    if isinstance(data, dict) and isinstance(data.get("action"), str):
        return data["action"], data
    return None, None


def too_deep(text, limit):
    """True when the JSON text opens more than `limit` arrays or objects inside each other."""
    depth = 0
    quoted = escaped = False
    for char in text:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
