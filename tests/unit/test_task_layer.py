"""The task's channel layer sends in one round trip exactly what channels-redis would: the
ordinary layer (Daphne's) receives it, and the capacity and expiry still hold."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

from webapp.streams.tasklayer import SEND_SHA, OneTripLayer, task_layer
from webapp.streams.weblayer import ReaderLayer


@pytest.fixture
def hosts(redis_client, settings):
    return [{"address": settings.REDIS_URL}]


async def test_a_message_sent_in_one_trip_reaches_an_ordinary_receiver(hosts):
    receiver = RedisChannelLayer(hosts=hosts, prefix="t1")
    sender = OneTripLayer(hosts=hosts, prefix="t1")
    channel = await receiver.new_channel()
    await sender.send(channel, {"type": "stream.frame", "text": "é" * 10, "seq": 3})
    await sender.send(channel, {"type": "stream.frame", "text": "second", "seq": 4})
    assert (await receiver.receive(channel))["seq"] == 3
    assert (await receiver.receive(channel))["text"] == "second"
    await sender.close_pools()
    await receiver.close_pools()


async def test_a_full_channel_raises_channel_full_and_keeps_what_it_holds(hosts, redis_client):
    sender = OneTripLayer(hosts=hosts, prefix="t2", capacity=2, expiry=30)
    await sender.send("specific.abc!x", {"type": "a"})
    await sender.send("specific.abc!x", {"type": "b"})
    with pytest.raises(ChannelFull):
        await sender.send("specific.abc!y", {"type": "c"})
    assert redis_client.zcard("t2specific.abc!") == 2
    assert 0 < redis_client.ttl("t2specific.abc!") <= 30
    await sender.close_pools()


def test_the_task_layer_is_the_configured_backend_stock_channels_redis_included(settings,
                                                                             redis_client):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": settings.REDIS_URL}], "capacity": 7}}}
    layer = task_layer()
    assert type(layer) is RedisChannelLayer and layer.capacity == 7
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "webapp.streams.weblayer.ReaderLayer",
        "CONFIG": {"hosts": [{"address": settings.REDIS_URL}], "capacity": 9}}}
    layer = task_layer()
    assert isinstance(layer, ReaderLayer) and layer.capacity == 9
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert not isinstance(task_layer(), OneTripLayer)


@pytest.mark.parametrize("value, backend", [
    (None, "webapp.streams.weblayer.ReaderLayer"),
    ("0", "webapp.streams.weblayer.ReaderLayer"),
    ("1", "channels_redis.core.RedisChannelLayer"),
])
def test_channel_layer_stock_runs_stock_channels_redis(value, backend):
    env = {k: v for k, v in os.environ.items() if k != "CHANNEL_LAYER_STOCK"}
    if value is not None:
        env["CHANNEL_LAYER_STOCK"] = value
    result = subprocess.run(
        [sys.executable, "-c", "from webapp import settings; "
                               "print(settings.CHANNEL_LAYERS['default']['BACKEND'])"],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == backend


async def test_a_send_after_redis_forgot_the_script_loads_it_again_and_arrives(hosts,
                                                                            redis_client):
    sender = OneTripLayer(hosts=hosts, prefix="tl")
    receiver = RedisChannelLayer(hosts=hosts, prefix="tl")
    channel = await receiver.new_channel()
    redis_client.script_flush()  # as after a Redis restart
    await sender.send(channel, {"type": "x", "n": 1})
    assert redis_client.script_exists(SEND_SHA) == [True]
    await sender.send(channel, {"type": "x", "n": 2})  # by digest now
    assert [(await receiver.receive(channel))["n"] for _ in range(2)] == [1, 2]
    await sender.close_pools()
    await receiver.close_pools()
