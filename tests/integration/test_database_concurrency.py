"""Many stream records written at once by two Daphnes and three prefork workers.

SQLite serializes every writer and hides what a server database does with concurrent
transactions; this module runs (like every integration test) on SQLite and on PostgreSQL.
"""

import asyncio
import contextlib
import json
import re

import pytest

from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream

STREAMS = 30
USERS = ("alice", "bob", "carol")
APPENDED = 2
WORKERS = [{"name": f"w{n}", "concurrency": STREAMS // 3} for n in (1, 2, 3)]
DATABASE_ERRORS = re.compile(
    r"database is locked|could not serialize|deadlock detected|OperationalError|"
    r"IntegrityError|InterfaceError|too many clients|connection already closed", re.IGNORECASE)


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """An installation with two Daphnes, three workers and three viewers (session cookies)."""
    with started_installation(tmp_path_factory.mktemp("crowd"), workers=WORKERS,
                              STREAM_MAX_PER_USER=STREAMS, STREAM_MAX_TOTAL=STREAMS * 2,
                              STREAM_LEASE_SECONDS=10) as harness:
        harness.web2 = harness.start_daphne("web2")
        harness.cookies = {}
        for index, name in enumerate(USERS):
            web = (harness.web, harness.web2)[index % 2]
            password = harness.create_user(name, groups=["ops"])
            harness.cookies[name] = harness.login(web.base_url, name, password)
        yield harness


def database_vendor(harness):
    """Return Django's database vendor inside the installation ("sqlite", "postgresql")."""
    return harness.shell("from django.db import connection\nprint(connection.vendor)"
                         ).strip().splitlines()[-1]


def add_shared_logs(harness, folder, sizes):
    """Make one log file per size (that many backlog lines) shared with group ops; return ids."""
    pairs = []
    for index, size in enumerate(sizes):
        path = folder / f"crowd-{index}.log"
        path.write_text("".join(f"s{index} backlog {n}\n" for n in range(size)))
        pairs.append((f"crowd-{folder.name}-{index}", path))
    ids = harness.add_logs(pairs)
    harness.shell("from django.contrib.auth.models import Group\nfrom tailf.models import LogSource\n"
                  "ops = Group.objects.get(name='ops')\n"
                  f"for source in LogSource.objects.filter(pk__in={ids!r}):\n"
                  "    source.groups.add(ops)\n")
    return ids, [path for _, path in pairs]


async def watch_until(client, wanted, timeout=90):
    """Read until `status running` and every wanted line arrived; return the queued status."""
    missing, queued, running = set(wanted), None, False
    while missing or not running:
        message = await client.next(timeout)
        if message["type"] == "status":
            assert message["state"] in ("queued", "running"), message
            queued = queued or (message if message["state"] == "queued" else None)
            running = running or message["state"] == "running"
        elif message["type"] == "lines":
            missing -= set(message["lines"])
    return queued


def stream_rows(harness, task_ids):
    """Return {task_id: (ended?, ending, lines_sent)} for these stream records."""
    out = harness.shell(
        "import json\nfrom webapp.models import Stream\n"
        f"rows = Stream.objects.filter(task_id__in={sorted(task_ids)!r})\n"
        "print(json.dumps({r.task_id: [r.ended is not None, r.ending, r.lines_sent] "
        "for r in rows}))\n")
    return {key: tuple(value) for key, value in json.loads(out.strip().splitlines()[-1]).items()}


def test_installation_runs_on_the_database_of_its_variant(crowd, installation_database):
    expected = {"sqlite": "sqlite", "postgres": "postgresql"}[installation_database.kind]
    assert database_vendor(crowd) == expected
    assert crowd.env["DATABASE_URL"].startswith(installation_database.kind)


async def test_thirty_streams_opened_and_closed_at_once_each_get_one_end_and_their_count(
        crowd, tmp_path):
    sizes = [1 + index % 7 for index in range(STREAMS)]
    sources, paths = add_shared_logs(crowd, tmp_path, sizes)
    async with contextlib.AsyncExitStack() as stack:
        sockets = await asyncio.gather(*(
            stack.enter_async_context(open_stream(
                crowd, f"/ws/tailf/{source}/?lines={sizes[index]}",
                cookie=crowd.cookies[USERS[index % len(USERS)]],
                web=(crowd.web, crowd.web2)[index % 2]))
            for index, source in enumerate(sources)))
        clients = [Client(socket) for socket in sockets]
        queued = await asyncio.gather(*(
            watch_until(client, [f"s{index} backlog {n}" for n in range(sizes[index])])
            for index, client in enumerate(clients)))
        for index, path in enumerate(paths):
            with path.open("a") as out:
                out.write("".join(f"s{index} new {n}\n" for n in range(APPENDED)))
        await asyncio.gather(*(client.lines([f"s{index} new {n}" for n in range(APPENDED)], 30)
                               for index, client in enumerate(clients)))
        await asyncio.gather(*(socket.close() for socket in sockets))
    task_ids = {status["task_id"]: sizes[index] + APPENDED for index, status in enumerate(queued)}
    assert len(task_ids) == STREAMS

    def all_ended():
        rows = stream_rows(crowd, task_ids)
        return rows if len(rows) == STREAMS and all(row[0] for row in rows.values()) else None

    rows = await asyncio.to_thread(crowd.wait_for, all_ended, 60, 0.5)
    assert rows, stream_rows(crowd, task_ids)
    assert {task: row[2] for task, row in rows.items()} == task_ids
    assert {row[1] for row in rows.values()} == {"disconnect"}, rows
    ends = await asyncio.to_thread(crowd.wait_for, lambda: all(
        crowd.task_end(task) for task in task_ids), 30)
    assert ends, {task: crowd.task_end(task) for task in task_ids}
    errors = [f"{process.log_path.name}: {line}" for process in crowd.processes
              for line in process.log_path.read_text(errors="replace").splitlines()
              if DATABASE_ERRORS.search(line)]
    assert not errors, "\n".join(errors[:20])
