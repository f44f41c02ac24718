"""Warming a pool process is bounded: a Redis that never answers costs WARM_SECONDS, not the
client's 10 s socket timeout (Celery kills a pool process not up within 4 s)."""

import socket
import time

import pytest
import redis.asyncio

from webapp.streams import warm


@pytest.mark.django_db
def test_a_silent_redis_ends_the_warm_up_within_its_bound(monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing ever answers
    port = silent.getsockname()[1]
    monkeypatch.setattr(warm.leases, "async_client", lambda: redis.asyncio.Redis(
        host="127.0.0.1", port=port, socket_timeout=10, socket_connect_timeout=5))
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            warm.warm_process()
    finally:
        silent.close()
    assert time.monotonic() - started < warm.WARM_SECONDS + 1.0
