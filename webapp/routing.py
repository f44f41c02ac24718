"""WebSocket URL routes: `/ws/<kind url>/<id>/` for every registered source kind
(docs/protocol.md, Connecting)."""

import logging

from channels.routing import URLRouter
from django.urls import re_path

from webapp.streams.consumer import StreamConsumer
from webapp.streams.kinds import all_kinds

log = logging.getLogger("tailboard.streams")


def websocket_urlpatterns():
    """Return one route per registered kind; anything else is refused at the handshake."""
    return [re_path(rf"^ws/{kind.url}/(?P<source_id>[^/]{{1,40}})/$",
                    StreamConsumer.as_asgi(kind=kind)) for kind in all_kinds()]


class StreamRouter:
    """Routes stream WebSockets; any other path is refused at the handshake (HTTP 403).

    Channels' URLRouter raises on an unknown path, which Daphne turns into a 500 and a
    traceback in the log before anyone has logged in.
    """

    def __init__(self):
        self.routes = websocket_urlpatterns()
        self.router = URLRouter(self.routes)

    def knows(self, path):
        """Tell whether a stream route matches this path."""
        path = path.lstrip("/")
        return any(route.pattern.match(path) for route in self.routes)

    async def __call__(self, scope, receive, send):
        """Hand known paths to the router; close unknown ones before accepting."""
        if self.knows(scope.get("path", "")):
            return await self.router(scope, receive, send)
        log.info("refused a WebSocket to an unknown path %r", scope.get("path", "")[:200])
        message = await receive()
        if message.get("type") == "websocket.connect":
            await send({"type": "websocket.close", "code": 1000})
