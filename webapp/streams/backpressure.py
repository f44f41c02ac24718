"""How many bytes Daphne still holds for one viewer: the gauge behind bounded memory per viewer.

Daphne writes every frame a consumer sends straight into the socket's Twisted transport, which
buffers without limit when the browser does not read. The consumer finds that transport behind
the ASGI `send` callable it was given (Daphne's `partial(server.handle_reply, protocol)`,
possibly wrapped by Channels' session middleware) and reads its buffered byte count, so it can
hold back credit (the task then waits and the lag stays on disk) or end the stream (4408).
"""


def find_transport(send, depth=8):
    """Return the Twisted transport behind an ASGI send callable, or None when there is none."""
    seen = 0
    queue = [send]
    while queue and seen < depth * 4:
        item = queue.pop(0)
        seen += 1
        transport = getattr(item, "transport", None)
        if transport is not None and hasattr(transport, "dataBuffer"):
            return transport
        owner = getattr(item, "__self__", None)
        queue.extend(value for value in (
            getattr(item, "func", None), *getattr(item, "args", ()), owner,
            getattr(owner, "real_send", None), getattr(item, "real_send", None))
            if value is not None and value is not item)
    return None


def buffered_bytes(transport):
    """Return the bytes a Twisted transport has accepted and not yet written to the socket."""
    if transport is None:
        return 0
    return (len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0))


class SendGauge:
    """Bytes buffered for one viewer, read from Daphne's transport (0 where there is none)."""

    def __init__(self, send):
        self.transport = find_transport(send)

    @property
    def known(self):
        """True when the transport was found (under Daphne), so the gauge means something."""
        return self.transport is not None

    def pending(self):
        """Return the bytes written for this viewer that the socket has not taken yet."""
        return buffered_bytes(self.transport)
