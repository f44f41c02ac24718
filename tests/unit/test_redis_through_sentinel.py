"""Where Redis is (`webapp/redisconf.py`): REDIS_URL alone changes nothing; with REDIS_SENTINELS
and REDIS_SENTINEL_MASTER every client (blocking, asyncio, the channel layer and its Links,
Celery's broker and result store) reaches the master the sentinels name, on real sentinels."""

import asyncio

import pytest
from celery import Celery
from kombu import Connection

from tests import sentinel as sentinels
from webapp import redisconf
from webapp.streams import leases
from webapp.streams.weblayer import ReaderLayer

URL = "redis://127.0.0.1:6390/3"


def test_without_sentinels_every_client_gets_redis_url_as_before():
    place = redisconf.place(URL)
    assert not place.via_sentinel
    assert place.celery_url() == URL
    assert place.celery_transport_options() == {}
    assert place.channel_host(socket_timeout=None, driver_info=None) == {
        "address": URL, "socket_timeout": None, "driver_info": None}
    client = place.sync_client(socket_timeout=1)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
    client.close()


SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps([s.REDIS_URL, s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND,
                  s.CELERY_BROKER_TRANSPORT_OPTIONS, s.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS,
                  s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]]))
"""


def probe_settings(**env):
    """Load webapp.settings in a fresh interpreter with this environment; return what it says."""
    import json
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    result = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], capture_output=True,
                            text=True, env={**clean, "DJANGO_SETTINGS_MODULE": "webapp.settings",
                                            **env}, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_without_sentinels_keep_the_plain_url():
    url, broker, results, broker_options, result_options, hosts = probe_settings(REDIS_URL=URL)
    assert url == broker == results == URL
    assert broker_options == {"ack_emulation": False} and result_options == {}
    assert hosts == [{"address": URL, "socket_timeout": None, "driver_info": None,
                      "max_connections": 10000}]


def test_settings_with_sentinels_route_broker_results_and_channel_layer_through_them():
    _url, broker, results, broker_options, result_options, hosts = probe_settings(
        REDIS_URL=URL, REDIS_SENTINELS="127.0.0.1:26379,127.0.0.2:26379",
        REDIS_SENTINEL_MASTER="main")
    assert broker == results == "sentinel://127.0.0.1:26379/3;sentinel://127.0.0.2:26379/3"
    assert broker_options["master_name"] == result_options["master_name"] == "main"
    assert broker_options["ack_emulation"] is False
    assert hosts[0]["sentinels"] == [["127.0.0.1", 26379], ["127.0.0.2", 26379]]
    assert hosts[0]["master_name"] == "main" and hosts[0]["db"] == 3
    assert hosts[0]["socket_timeout"] is None  # channels_redis #422 under redis-py 8


def test_sentinel_settings_give_each_client_the_sentinels_and_the_master():
    place = redisconf.place("redis://:p%40ss%3Aw%2Frd@ignored:1/2", "10.0.0.5:26379, [::1]:26380",
                            "main", "sentinel-secret")
    assert place.sentinels == (("10.0.0.5", 26379), ("::1", 26380))
    host = place.channel_host(socket_timeout=None)
    assert host["sentinels"] == [("10.0.0.5", 26379), ("::1", 26380)]
    assert host["master_name"] == "main" and host["db"] == 2 and host["password"] == "p@ss:w/rd"
    assert host["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert host["socket_timeout"] is None
    url = place.celery_url()
    assert url == ("sentinel://:p%40ss%3Aw%2Frd@10.0.0.5:26379/2;"
                   "sentinel://:p%40ss%3Aw%2Frd@[::1]:26380/2")
    options = place.celery_transport_options()
    assert options["master_name"] == "main"
    assert options["sentinel_kwargs"]["password"] == "sentinel-secret"
    # kombu and Celery's sentinel backend read the master's password and database back.
    connection = Connection(url, transport_options=options)
    assert connection.transport_cls == "sentinel" and connection.password == "p@ss:w/rd"
    assert connection.virtual_host == "2" and len(connection.alt) == 2
    backend = Celery(result_backend=url, set_as_current=False)
    backend.conf.result_backend_transport_options = options
    params = backend.backend.connparams
    assert params["password"] == "p@ss:w/rd" and params["db"] == 2
    assert [(h["host"], h["port"]) for h in params["hosts"]] == [("10.0.0.5", 26379),
                                                                 ("::1", 26380)]


@pytest.mark.parametrize("sentinels, master, password, url, says", [
    ("127.0.0.1:26379", "", "", URL, "REDIS_SENTINEL_MASTER"),
    ("", "main", "", URL, "REDIS_SENTINELS (host:port"),
    ("", "", "pw", URL, "REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS"),
    ("127.0.0.1", "main", "", URL, "'127.0.0.1' is not host:port"),
    ("127.0.0.1:0", "main", "", URL, "'127.0.0.1:0' is not host:port"),
    ("127.0.0.1:99999", "main", "", URL, "is not host:port"),
    (":26379", "main", "", URL, "':26379' is not host:port"),
    ("127.0.0.1:26379", "main", "", "rediss://h:1/0", "must be a redis:// URL"),
    ("127.0.0.1:26379", "main", "", "unix:///run/redis.sock", "must be a redis:// URL"),
])
def test_an_unusable_sentinel_setting_says_which_and_why(sentinels, master, password, url, says):
    with pytest.raises(ValueError, match=None) as raised:
        redisconf.place(url, sentinels, master, password)
    assert says in str(raised.value)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """A real master, replica and three sentinels."""
    reason = sentinels.available()
    if reason:
        pytest.skip(reason)
    found = sentinels.SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    yield found
    found.close()


@pytest.fixture
def through_sentinel(group, settings):
    """Settings that name the group's sentinels (REDIS_URL's host and port are unused)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SENTINELS = group.sentinels.split(",")
    settings.REDIS_SENTINEL_MASTER = sentinels.MASTER_NAME
    leases._sync_clients.clear()
    yield group
    leases._sync_clients.clear()
    group.client().flushdb()


def test_blocking_and_asyncio_clients_reach_the_master_through_the_sentinels(through_sentinel):
    master = through_sentinel.client()
    leases.sync_client().set("through", "sync")
    assert master.get("through") == b"sync"

    async def both():
        client = leases.async_client()
        try:
            await client.set("through", "async")
            return await client.get("through")
        finally:
            await client.aclose()
    assert asyncio.run(both()) == b"async"


def test_the_channel_layer_and_its_links_go_through_the_sentinels(through_sentinel):
    place = redisconf.configured()
    layer = ReaderLayer(hosts=[place.channel_host(socket_timeout=None, driver_info=None)],
                        prefix="sentinel-test")

    async def round_trip():
        try:
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "hello", "n": 7})  # a Link's Lua send
            return await asyncio.wait_for(layer.receive(channel), 10)  # the reader's Link
        finally:
            await layer.close_pools()
    assert asyncio.run(round_trip()) == {"type": "hello", "n": 7}


def test_up_uses_the_master_the_sentinels_name_and_starts_no_redis(through_sentinel, tmp_path):
    from webapp.management.commands.up import Command

    said = []
    command = Command()
    command.say = lambda text, style=None: said.append(text)
    children = {}
    command.ensure_redis(tmp_path, children)
    assert children == {}  # nothing started
    assert said == [f"using the Redis master 'tailboard' through the sentinels "
                    f"{through_sentinel.sentinels}"]


def test_up_says_so_when_the_sentinels_name_no_master(settings, tmp_path):
    from django.core.management.base import CommandError

    from webapp import embedded
    from webapp.management.commands.up import Command

    settings.REDIS_SENTINELS = [f"127.0.0.1:{embedded.free_port()}"]
    settings.REDIS_SENTINEL_MASTER = "nowhere"
    with pytest.raises(CommandError, match="master 'nowhere' through the sentinels .* does "
                                           "not answer"):
        Command().ensure_redis(tmp_path, {})
    assert not (tmp_path / "redis").exists()


def test_without_sentinels_redis_url_is_not_second_guessed():
    # kombu's own schemes stay Celery's business, as before sentinel support.
    assert redisconf.place("redis+socket:///run/redis.sock").celery_url() == \
        "redis+socket:///run/redis.sock"
