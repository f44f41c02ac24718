"""How many bytes Daphne still holds for one viewer: the gauge behind bounded memory per viewer.

Daphne writes every frame a consumer sends straight into the socket's Twisted transport, which
buffers without limit when the browser does not read. The consumer finds that transport behind
the ASGI `send` callable it was given (Daphne's `partial(server.handle_reply, protocol)`,
possibly wrapped by Channels' session middleware) and reads its buffered byte count, so it can
hold back credit (the task then waits and the lag stays on disk) or end the stream (4408).
Finding and reading that transport reaches into Daphne and Twisted: `internals`.
"""

from webapp.streams.internals import buffered_bytes, find_transport


class SendGauge:
    """Bytes buffered for one viewer, read from Daphne's transport (0 where there is none)."""

    def __init__(self, send):
        self.transport = find_transport(send)

    def pending(self):
        """Return the bytes written for this viewer that the socket has not taken yet."""
        return buffered_bytes(self.transport)
