"""Following container sources with the file engine: CRI files written by a real runtime
(podman + runc, conmon writing the CRI format) and Docker json-file files in dockerd's format."""

import json
import os
import time

import pytest

from containers.follow import ContainerFollower
from containers.history import files_of
from containers.layout import CriLayout, DockerLayout
from tailf.search import scan

T = "2026-12-06T15:12:34.917598233+00:00"


@pytest.fixture
def followers(tmp_path):
    """Factory: a ContainerFollower confined to tmp_path, closed afterwards."""
    made = []

    def make(layout, **options):
        options.setdefault("roots", [str(tmp_path)])
        options.setdefault("rotate_wait", 0.5)
        made.append(ContainerFollower(layout, **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def poll_until(follower, wanted, timeout=10.0):
    """Poll until `wanted(events so far)` holds; return the events."""
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += follower.poll()
        if wanted(events):
            return events
        follower.idle()
    raise AssertionError(f"not seen in {timeout} s; events: {events!r}")


def records(events):
    """[(container, stream, message)] of the lines events, in order."""
    return [(name, run.stream, message) for kind, *rest in events if kind == "lines"
            for run, name in [rest] for message in run.message_list()]


def notices(events):
    return [str(value) for kind, value, *_ in events if kind == "notice"]


def test_two_pods_a_restart_stderr_and_partials_written_by_podman(tmp_path, podman, followers):
    pods = tmp_path / "pods"
    podman.run(str(pods / "shop_web-1_u1/app/0.log"),
               "echo one; echo oops >&2; printf 'no newline'")
    podman.run(str(pods / "shop_db-1_u2/pg/0.log"), "echo ready")
    podman.run(str(pods / "other_web-9_u3/app/0.log"), "echo not this namespace")
    follower = followers(CriLayout(str(pods), "shop", "*"), backlog=10)
    backlog = follower.start()
    backlog += poll_until(follower, lambda ev: len(records(ev)) == 1)  # the part held 2 s
    assert sorted(records(backlog)) == [
        ("shop/db-1/pg", "stdout", "ready"), ("shop/web-1/app", "stderr", "oops"),
        ("shop/web-1/app", "stdout", "no newline"), ("shop/web-1/app", "stdout", "one")]
    web = [entry for entry in records(backlog) if entry[0] == "shop/web-1/app"]
    assert web == [("shop/web-1/app", "stdout", "one"), ("shop/web-1/app", "stderr", "oops"),
                   ("shop/web-1/app", "stdout", "no newline")]
    podman.run(str(pods / "shop_web-1_u1/app/1.log"), "echo after restart")
    events = poll_until(follower, lambda ev: ("shop/web-1/app", "stdout", "after restart")
                        in records(ev))
    assert "container shop/web-1/app restarted (restart 1); following its new log" \
        in notices(events)
    podman.run(str(pods / "shop_api-1_u4/api/0.log"), "echo hello from api")
    events = poll_until(follower, lambda ev: records(ev))
    assert records(events) == [("shop/api-1/api", "stdout", "hello from api")]
    assert "container shop/api-1/api started logging; following it" in notices(events)


def test_a_rotated_cri_log_loses_nothing_and_a_pod_gone_leaves_with_a_notice(
        tmp_path, podman, followers):
    pods = tmp_path / "pods"
    live = pods / "ns_job-1_u1/main/0.log"
    follower = followers(CriLayout(str(pods), "ns", "job-*", "main"), backlog=0, rotate_wait=1)
    events = follower.start()
    ident = podman.run(str(live), "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo line $i;"
                                  " sleep 0.01; done", detach=True)
    events += poll_until(follower, lambda ev: len(records(ev)) >= 20)
    os.rename(live, f"{live}.20261206-151500")  # kubelet's rotation: rename, then a new file
    time.sleep(0.2)  # conmon goes on writing to the renamed file a while
    podman.kill(ident)
    podman.run(str(live), "echo new file")
    events += poll_until(follower, lambda ev: "new file" in [m for *_, m in records(ev)])
    with open(f"{live}.20261206-151500") as rotated:
        written = [line.split(" ", 3)[3].rstrip("\n") for line in rotated]
    assert len(written) > 20
    assert [m for *_, m in records(events)] == written + ["new file"]
    assert any("was rotated" in text for text in notices(events))
    import shutil

    shutil.rmtree(pods / "ns_job-1_u1")
    events = poll_until(follower, lambda ev: any("is gone" in text for text in notices(ev)))
    assert "container ns/job-1/main is gone; no longer following it" in notices(events)
    assert records(events) == []


def test_history_search_reads_rotated_cri_files_and_matches_the_message(tmp_path):
    folder = tmp_path / "pods/ns_web_u1/app"
    folder.mkdir(parents=True)
    (folder / "0.log.20261206-100000").write_text(f"{T} stdout F old match\n")
    (folder / "0.log").write_text(f"{T} stderr F new match\n{T} stdout F other\n")
    (folder / "0.log.txt").write_text(f"{T} stdout F not a log\n")
    layout = CriLayout(str(tmp_path / "pods"), "ns", "web")
    files, _ = files_of(layout, rotated=True)
    assert [os.path.basename(path) for path in files] == ["0.log.20261206-100000", "0.log"]
    found = [item["line"] for event in scan(files, "^(old|new) match$", live=False,
                                           view=layout_parser(layout).view)
             if event[0] == "matches" for item in event[2]]
    assert found == [f"{T} old match", f"{T} new match"]


def layout_parser(layout):
    from containers.records import PARSERS

    return PARSERS[layout.kind]()


def docker_write(folder, ident, log, stream="stdout"):
    """Append one record the way dockerd's json-file driver writes it."""
    record = {"log": log, "stream": stream, "time": "2026-12-06T15:12:34.917598233Z"}
    with open(folder / ident / f"{ident}-json.log", "a") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")


def docker_container(root, ident, name):
    (root / ident).mkdir(parents=True)
    (root / ident / "config.v2.json").write_text(json.dumps({"ID": ident, "Name": f"/{name}"}))
    (root / ident / f"{ident}-json.log").write_text("")


def test_docker_json_file_names_by_config_joins_splits_and_keeps_stderr(tmp_path, followers):
    root = tmp_path / "containers"
    web, db = "a" * 64, "b" * 64
    docker_container(root, web, "web-1")
    docker_container(root, db, "db")
    follower = followers(DockerLayout(str(root), "web-*"))
    follower.start()
    docker_write(root, web, "x" * 16384)
    docker_write(root, web, "bad\n", "stderr")
    docker_write(root, web, "y" * 16384)
    docker_write(root, web, "end\n")
    docker_write(root, db, "not followed\n")
    events = poll_until(follower, lambda ev: len(records(ev)) == 2)
    assert records(events) == [("web-1", "stderr", "bad"),
                               ("web-1", "stdout", "x" * 16384 + "y" * 16384 + "end")]
    other = "c" * 64
    docker_container(root, other, "web-2")
    docker_write(root, other, "hi\n")
    events = poll_until(follower, lambda ev: records(ev))
    assert records(events) == [("web-2", "stdout", "hi")]
    assert "container web-2 started logging; following it" in notices(events)


def test_a_symlinked_pod_folder_outside_the_roots_is_not_read(tmp_path, followers):
    outside = tmp_path / "outside/ns_evil_u1/app"
    outside.mkdir(parents=True)
    (outside / "0.log").write_text(f"{T} stdout F secret\n")
    pods = tmp_path / "root/pods"
    pods.mkdir(parents=True)
    os.symlink(tmp_path / "outside/ns_evil_u1", pods / "ns_evil_u1")
    follower = followers(CriLayout(str(pods), "ns", "*"), roots=[str(tmp_path / "root")])
    events = follower.start()
    assert records(events) == []


def test_fast_alternation_goes_out_one_run_per_stream_and_slow_keeps_its_order():
    from containers.follow import MAX_RUNS
    from containers.records import CriParser

    few = [f"{T} stdout F a", f"{T} stderr F b", f"{T} stdout F c"]
    assert [(r.stream, r.lines) for r in CriParser().feed_runs(few, limit=MAX_RUNS)] == [
        ("stdout", [f"{T} a"]), ("stderr", [f"{T} b"]), ("stdout", [f"{T} c"])]
    many = [f"{T} {'stderr' if n % 3 == 1 else 'stdout'} F {n}" for n in range(30)]
    runs = CriParser().feed_runs(many, limit=MAX_RUNS)
    assert [r.stream for r in runs] == ["stdout", "stderr"]
    assert runs[0].message_list() == [str(n) for n in range(30) if n % 3 != 1]
    assert runs[1].message_list() == [str(n) for n in range(30) if n % 3 == 1]
    runs = CriParser().feed_runs(many[1:], limit=MAX_RUNS)  # stderr first: it goes first
    assert [r.stream for r in runs] == ["stderr", "stdout"]


def test_a_follower_sends_a_fast_alternating_container_as_one_run_per_stream(tmp_path, followers):
    log = tmp_path / "pods" / "ns_p_u1" / "app" / "0.log"
    log.parent.mkdir(parents=True)
    log.write_text("")
    follower = followers(CriLayout(str(tmp_path / "pods"), "ns", "*"), backlog=0)
    follower.start()
    with open(log, "a") as handle:
        handle.write("".join(f"{T} {'stderr' if n % 3 == 1 else 'stdout'} F {n}\n"
                             for n in range(30)))
    runs = [event[1] for event in follower.poll() if event[0] == "lines"]
    assert [(r.stream, len(r.lines)) for r in runs] == [("stdout", 20), ("stderr", 10)]
