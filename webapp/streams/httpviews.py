"""The HTTP transport's views (docs/protocol.md, "Over plain HTTP"): start, poll, stop and ack.

`POST /streams/<kind url>/<id>/?OPTIONS` starts a stream (201 `{"stream": token}`, or a
refusal: an HTTP 4xx with `{"code": 44xx, "message": ...}`); `GET /streams/poll/<token>/
?after=N` answers with what follows message N; `POST /streams/poll/<token>/` takes `stop` and
`ack` as the WebSocket does. The work is `polling.py`'s; these only translate HTTP.
"""

import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods, require_POST
from redis.exceptions import RedisError

from webapp.streams import kinds, polling, protocol
from webapp.streams.consumer import TaskControl
from webapp.streams.session import Refusal
from webapp.streams.text import say

HTTP_STATUS = {protocol.CLOSE_BAD_OPTION: 400, protocol.CLOSE_NOT_LOGGED_IN: 401,
               protocol.CLOSE_FORBIDDEN: 403, protocol.CLOSE_NO_SOURCE: 404,
               protocol.CLOSE_TOO_MANY: 429, protocol.CLOSE_SERVER_ERROR: 503}
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
control_class = TaskControl
log = logging.getLogger(__name__)


def reply(body, status=200):
    """A JSON answer that no proxy buffers or caches."""
    if isinstance(body, str):
        response = HttpResponse(body, status=status, content_type="application/json")
    else:
        response = JsonResponse(body, status=status)
    for name, value in HEADERS.items():
        response[name] = value
    return response


def refusal(code, message):
    """A refusal: the close code the WebSocket would have used, as an HTTP status."""
    return reply({"code": code, "message": str(message)}, HTTP_STATUS.get(code, 400))


def kind_of(url):
    """The registered kind served under this URL part, or None."""
    return next((kind for kind in kinds.all_kinds() if kind.url == url), None)


async def viewer(request):
    """The logged-in user and the session key, or (None, None)."""
    user = await request.auser()
    key = request.session.session_key
    if not user.is_authenticated or not key:
        return None, None
    return user, key


@require_POST
async def start(request, kind_url, source_id):
    """Start a stream of this kind's source over HTTP."""
    kind = kind_of(kind_url)
    if kind is None:
        return refusal(protocol.CLOSE_NO_SOURCE, say("no_source", kind=kind_url[:40]))
    user, key = await viewer(request)
    if user is None:
        return refusal(protocol.CLOSE_NOT_LOGGED_IN, say("not_logged_in"))
    try:
        token = await polling.start(kind, user, key, source_id,
                                    request.META.get("QUERY_STRING", ""), control_class())
    except Refusal as refused:
        return refusal(refused.code, refused.message)
    except RedisError as exc:
        return redis_lost(request, exc)
    return reply({"stream": token}, 201)


@require_http_methods(["GET", "POST"])
async def stream(request, token):
    """GET: the next messages (long poll); POST: a client message (`stop`, `ack`)."""
    user, key = await viewer(request)
    if user is None:
        return refusal(protocol.CLOSE_NOT_LOGGED_IN, say("not_logged_in"))
    if request.method == "GET":
        return await poll(request, token, key)
    try:
        text = request.body.decode("utf-8")
        return reply(await polling.act(token, key, text, control_class()))
    except UnicodeDecodeError:
        return refusal(protocol.CLOSE_BAD_OPTION, say("unknown_message"))
    except polling.NotFound:
        return refusal(protocol.CLOSE_NO_SOURCE, "no such stream")
    except RedisError as exc:
        return redis_lost(request, exc)


def redis_lost(request, exc):
    """Redis did not answer: 503 with the reason (the dashboard retries, then reconnects)."""
    log.error("%s %s: lost contact with Redis: %s", request.method, request.path, exc)
    return refusal(protocol.CLOSE_SERVER_ERROR, say("redis_lost", error=exc))


async def poll(request, token, key):
    """Answer a poll: the messages after `after`, waiting for some up to 25 s."""
    try:
        after = int(request.GET.get("after", "0"))
        if after < 0:
            raise ValueError(after)
    except ValueError:
        return refusal(protocol.CLOSE_BAD_OPTION,
                       say("bad_option", error="after must be a whole number ≥ 0"))
    try:
        return reply(await polling.poll(token, key, request.session, after, control_class()))
    except polling.NotFound:
        return refusal(protocol.CLOSE_NO_SOURCE, "no such stream")
    except RedisError as exc:
        return redis_lost(request, exc)
