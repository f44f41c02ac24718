"""A third source kind is one app plus one registration: a tiny "counter" kind, defined in
this test, streams end to end through the real lifecycle (Daphne, Redis, a prefork worker)
without a line of `webapp` knowing it."""

import asyncio
import textwrap

import pytest
from websockets.exceptions import ConnectionClosed

from tests.harness import ROOT, started_installation
from tests.integration.conftest import Client, open_stream

COUNTER_APP = {
    "__init__.py": "",
    "apps.py": '''
        from django.apps import AppConfig


        class CounterConfig(AppConfig):
            name = "counterkind"

            def ready(self):
                from counterkind import stream
                from webapp.streams.kinds import Kind, register

                register(Kind(slug="counter", label="Counters", url="counter",
                              model="counterkind.CounterSource", run=stream.count,
                              parse_options=stream.parse, describe=lambda s: f"up to {s.limit}",
                              fields=("limit",), add_argument=("limit", "Count up to this.")))
    ''',
    "models.py": '''
        from django.db import models

        from webapp.models import Source


        class CounterSource(Source):
            limit = models.PositiveIntegerField()
            queue = models.CharField(max_length=100, default="tailf")
    ''',
    "stream.py": '''
        from webapp.streams import protocol
        from webapp.streams.options import int_option


        def parse(query):
            return {"start": int_option(query, "start", 1, 0, 1000)}


        async def count(out, source, options, worker):
            await out.send(protocol.status("running", f"counting to {source.limit}",
                                           worker=worker))
            numbers = [str(n) for n in range(options["start"], source.limit + 1)]
            await out.send_lines(numbers)
    ''',
    "migrations/__init__.py": "",
    "migrations/0001_initial.py": '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = [("auth", "0012_alter_user_first_name_max_length")]
            operations = [migrations.CreateModel(name="CounterSource", fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True)),
                ("name", models.CharField(max_length=100, unique=True)),
                ("enabled", models.BooleanField(default=True)),
                ("limit", models.PositiveIntegerField()),
                ("queue", models.CharField(default="tailf", max_length=100)),
                ("groups", models.ManyToManyField(blank=True, related_name="+", to="auth.group")),
            ], options={"ordering": ["name"], "abstract": False})]
    ''',
}


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """An installation with the counter app on its path and in TAILBOARD_EXTRA_APPS."""
    plugins = tmp_path_factory.mktemp("plugins")
    for name, text in COUNTER_APP.items():
        path = plugins / "counterkind" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    with started_installation(tmp_path_factory.mktemp("counter"),
                              TAILBOARD_EXTRA_APPS="counterkind",
                              PYTHONPATH=f"{ROOT}:{plugins}") as harness:
        yield harness


async def test_a_kind_defined_outside_webapp_streams_end_to_end(installation):
    harness = installation
    out = harness.manage("sources", "add-counter", "to-five", "5")
    source = int(out.strip().splitlines()[-1])
    listed = harness.manage("sources", "list")
    assert "counter" in listed and "up to 5" in listed
    async with open_stream(harness, f"/ws/counter/{source}/?start=2") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        running = await client.status("running")
        assert running["message"] == "counting to 5"
        assert running["worker"] == harness.worker.hostname
        assert await client.lines(["5"]) == ["2", "3", "4", "5"]
        stopped = await client.status("stopped")
        assert stopped["message"] == "the source ended"
        with pytest.raises(ConnectionClosed):
            await client.next(5)
        assert socket.close_code == 1000
    ended = await asyncio.to_thread(harness.wait_for,
                                    lambda: harness.task_end(queued["task_id"]), 10)
    assert ended
    page = await asyncio.to_thread(
        lambda: __import__("httpx").get(harness.web.base_url + "/",
                                        headers={"Cookie": harness.admin_cookie}, timeout=10))
    assert "Counters" in page.text and f'value="counter:{source}"' in page.text


async def test_the_new_kind_gets_the_lifecycle_refusals(installation):
    harness = installation
    async with open_stream(harness, "/ws/counter/424242/") as socket:
        client = Client(socket)
        error = await client.status("error")
        assert error["code"] == 4404 and error["message"] == "no such counter source"
    out = harness.manage("sources", "add-counter", "to-three", "3")
    source = int(out.strip().splitlines()[-1])
    async with open_stream(harness, f"/ws/counter/{source}/?start=x") as socket:
        error = await Client(socket).status("error")
        assert error["code"] == 4400 and "start" in error["message"]
