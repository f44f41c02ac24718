"""ASGI entry point: Django for HTTP, Channels for the stream WebSockets."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webapp.clientaddr import warn_if_daphne_believes_the_header  # noqa: E402
from webapp.origins import SameOriginValidator  # noqa: E402
from webapp.routing import StreamRouter  # noqa: E402
from webapp.wsauth import AuthStack  # noqa: E402

warn_if_daphne_believes_the_header(sys.argv)

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(SameOriginValidator(
        AuthStack(StreamRouter()))),
})


def _freeze_startup_objects():
    """Move what startup built out of the GC's reach: a full collection then walks only what
    serving adds, not all of Django, Channels and Twisted (it took 50-80 ms in Daphne and
    stalled every stream meanwhile)."""
    import gc

    gc.collect()
    gc.freeze()


_freeze_startup_objects()
