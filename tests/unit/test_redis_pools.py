"""Redis pools hold as many waiting long polls as REDIS_MAX_CONNECTIONS (redis-py's asyncio
default, 100, failed the 101st waiting poll of one Daphne with a 500)."""

import asyncio

import webapp.settings as configured
from webapp.streams import leases
from webapp.streams.weblayer import ReaderLayer


async def test_the_channel_layer_and_lease_pools_take_more_than_a_hundred_waiting_polls(
        redis_server, settings):
    config = configured.CHANNEL_LAYERS["default"]["CONFIG"]  # as Daphne builds it
    hosts = [dict(config["hosts"][0], address=redis_server)]  # on the tests' Redis
    layer = ReaderLayer(**{**config, "hosts": hosts})
    key = layer.prefix + "tailboard.poll.pool-test"
    settings.REDIS_URL = redis_server
    client = leases.async_client()
    try:
        # 150 blocking pops at once on the layer's pool, as 150 waiting long polls make.
        pops = [layer.connection(0).bzpopmin(key, 1) for _ in range(150)]
        assert await asyncio.gather(*pops) == [None] * 150
        assert (await asyncio.gather(*[client.blpop([key + ":l"], 1) for _ in range(150)])
                == [None] * 150)
        assert settings.REDIS_MAX_CONNECTIONS >= 1000
    finally:
        await client.aclose()
        await layer.flush()
