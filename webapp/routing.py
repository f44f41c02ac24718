"""WebSocket URL routes (SPEC: /ws/tailf/<id>/ and /ws/feeds/<id>/)."""

from django.urls import re_path

from feeds.consumers import FeedConsumer
from tailf.consumers import TailConsumer

websocket_urlpatterns = [
    re_path(r"^ws/tailf/(?P<source_id>[^/]{1,40})/$", TailConsumer.as_asgi()),
    re_path(r"^ws/feeds/(?P<source_id>[^/]{1,40})/$", FeedConsumer.as_asgi()),
]
