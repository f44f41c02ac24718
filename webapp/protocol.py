"""The wire protocol: every message between task, consumer and browser is built here."""

import json

# Close codes (SPEC.md "Streams").
CLOSE_NORMAL = 1000
CLOSE_SERVER_ERROR = 4500  # autobahn (Daphne) only sends 1000 or 3000-4999
CLOSE_BAD_OPTION = 4400
CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_SOURCE = 4404
CLOSE_TOO_MANY = 4429

# Daphne closes the socket above 1 MiB; keep every frame well under it.
MAX_FRAME_BYTES = 1024 * 1024 - 1024

# Channel-layer event types sent by a task to its consumer (handler: stream_frame).
EVENT_FRAME = "stream.frame"


def status(state, message, **extra):
    """Build a `status` message: queued, running, stopped or error."""
    return {"type": "status", "state": state, "message": message, **extra}


def lines(batch):
    """Build a `lines` message from whole lines without newlines, in file order."""
    return {"type": "lines", "lines": list(batch)}


def notice(message):
    """Build a `notice` message (rotated, truncated, waiting, recreated, ...)."""
    return {"type": "notice", "message": message}


def dropped(count):
    """Build a `dropped` message: lines not delivered because the viewer fell behind."""
    return {"type": "dropped", "count": int(count)}


def entries(items):
    """Build an `entries` message from feed entries, oldest first."""
    return {"type": "entries", "entries": list(items)}


def encode(message):
    """Serialise a message to the JSON text of one WebSocket frame."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def frame_event(message, final=False, reason=""):
    """Wrap a message as a channel-layer event for the consumer to relay as one frame.

    A final event also tells the consumer to close the socket and why the stream ended.
    """
    event = {"type": EVENT_FRAME, "text": encode(message)}
    if final:
        event["close"] = CLOSE_SERVER_ERROR if message.get("state") == "error" else CLOSE_NORMAL
        event["reason"] = reason or message.get("message", "")
    if message.get("type") == "status" and message.get("worker"):
        event["worker"] = message["worker"]
    return event


def split_lines(batch, limit=MAX_FRAME_BYTES):
    """Split a batch of lines into `lines` messages whose frames stay under the limit."""
    chunk, size = [], 30
    for line in batch:
        cost = len(json.dumps(line, ensure_ascii=False)) + 1
        if chunk and size + cost > limit:
            yield lines(chunk)
            chunk, size = [], 30
        chunk.append(line)
        size += cost
    if chunk:
        yield lines(chunk)


def parse_client(text):
    """Parse a client frame; return its action name or None when it is not understood."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("action"), str):
        return data["action"]
    return None
