"""What a container source may read and what its history search may cost (issue 22, points 4,
5 and 8 for the container kind): links planted in the pods folder lead nowhere, the search
lists off the event loop, reads at most TAILF_MAX_FILES containers and stops after
SEARCH_MAX_SECONDS."""

import asyncio
import os
import time
from types import SimpleNamespace

import pytest
import re2

from containers import history
from containers.follow import ContainerFollower
from containers.layout import CriLayout, DockerLayout
from tailf.roots import OutsideRoots

T = "2026-12-06T15:12:34.917598233+00:00"


def planted(link, target, uid=65534):
    """A symlink made by someone who can write the folder but is not root (owned by `uid`)."""
    os.symlink(target, link)
    os.lchown(link, uid, uid)


def cri_log(path, *messages, mtime=None):
    """Write a CRI log (one whole stdout record per message)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{T} stdout F {message}\n" for message in messages))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


class Recorder:
    """Collects what a stream body sends (the narrow stand-in for the task's output)."""

    def __init__(self):
        self.sent = []

    async def send_frame(self, message):
        self.sent.append(message)

    async def send(self, message):
        self.sent.append(message)

    async def notice(self, text):
        self.sent.append({"type": "notice", "message": text})

    def matches(self):
        return [item["line"].split(" ", 1)[1] for m in self.sent if m["type"] == "matches"
                for item in m["matches"]]

    def notices(self):
        return [m["message"] for m in self.sent if m["type"] == "notice"]


def settings_for(root, **extra):
    return SimpleNamespace(**{"SEARCH_MAX_MATCHES": 1000, "TAIL_MAX_LINE_BYTES": 65536,
                              "TAILF_MAX_FILES": 64, "SEARCH_MAX_SECONDS": 300,
                              "LOG_ROOTS": [str(root)], **extra})


def run_search(layout, root, pattern="hit", around=None, **options):
    out = Recorder()
    options = {"search": pattern, "context": 0, **options}
    if around is None:
        asyncio.run(history.search(out, layout, options, re2.compile(pattern),
                                   settings_for(root)))
    else:
        asyncio.run(history.around(out, layout, {"around": around, **options},
                                   settings_for(root)))
    return out


@pytest.fixture
def pods(tmp_path):
    """ns/web's container app (live and rotated log) beside another namespace's secret pod."""
    pods = tmp_path / "pods"
    cri_log(pods / "secret_db_u9/pg/0.log", "SECRET hit")
    cri_log(pods / "ns_web_u1/app/0.log", "web hit")
    cri_log(pods / "ns_web_u1/app/0.log.20261206-090000", "web old hit")
    return pods


def test_links_a_writer_planted_in_the_pods_folder_are_neither_followed_nor_searched(
        pods, tmp_path):
    planted(pods / "ns_web_u1/app/0.log.20261206-100000", "../../secret_db_u9/pg/0.log")
    planted(pods / "ns_web_u1/side", "../secret_db_u9/pg")  # a container folder
    planted(pods / "ns_evil_u2", "secret_db_u9")  # a whole pod folder
    layout = CriLayout(str(pods), "ns", "*")
    out = run_search(layout, tmp_path, rotated=True)
    assert out.matches() == ["web old hit", "web hit"]
    refused = [text for text in out.notices() if "outside its source's folder" in text]
    assert sorted(text.split(" is not searched")[0] for text in refused) == sorted([
        str(pods / "ns_evil_u2/pg/0.log"), str(pods / "ns_web_u1/side/0.log"),
        str(pods / "ns_web_u1/app/0.log.20261206-100000")])
    for name in ("0.log.20261206-100000", "ns_web_u1/side/0.log"):
        with pytest.raises(OutsideRoots, match="outside its source's folder"):
            run_search(layout, tmp_path, around=1, file=name)
    follower = ContainerFollower(layout, roots=[str(tmp_path)], rotate_wait=0.5)
    try:
        events = follower.start()
    finally:
        follower.close()
    lines = [line for kind, *rest in events if kind == "lines" for line in rest[0].lines]
    assert lines == [f"{T} web hit"]
    [warning] = [value for kind, value, *_ in events if kind == "warning"]
    assert warning.count("outside its source's folder") == 2


def test_a_docker_rotated_file_linked_by_a_writer_to_another_container_is_not_read(tmp_path):
    root = tmp_path / "containers"
    for ident, name, text in (("a" * 64, "web", "web hit"), ("b" * 64, "db", "SECRET hit")):
        (root / ident).mkdir(parents=True)
        (root / ident / "config.v2.json").write_text(f'{{"Name": "/{name}"}}')
        (root / ident / f"{ident}-json.log").write_text(
            f'{{"log":"{text}\\n","stream":"stdout","time":"2026-12-06T15:12:34Z"}}\n')
    planted(root / ("a" * 64) / f"{'a' * 64}-json.log.1", f"../{'b' * 64}/{'b' * 64}-json.log")
    layout = DockerLayout(str(root), "web", [str(tmp_path)])
    out = run_search(layout, tmp_path, rotated=True)
    assert out.matches() == ["web hit"]
    assert any(text.startswith(f"{root / ('a' * 64)}/{'a' * 64}-json.log.1 is not searched: "
                               "resolves to a file outside its source's folder")
               for text in out.notices()), out.notices()


def test_a_search_over_more_containers_than_tailf_max_files_reads_the_newest(tmp_path):
    pods = tmp_path / "pods"
    for number in range(70):
        cri_log(pods / f"ns_p{number:02}_u{number}/app/0.log", f"hit {number}",
                mtime=1_000_000 + number)
    out = run_search(CriLayout(str(pods), "ns", "*"), tmp_path)
    assert out.matches() == [f"hit {number}" for number in range(6, 70)]
    [notice] = out.notices()
    assert notice == (f"70 files match {pods}: ns/*/*; searching the 64 most recently written "
                      "(TAILF_MAX_FILES=64), 6 left out")
    assert notice.code == "search_glob_limit"


def test_a_slow_listing_does_not_block_the_event_loop(pods, tmp_path, monkeypatch):
    layout = CriLayout(str(pods), "ns", "*")
    listing = layout.candidates

    def slow_candidates():
        time.sleep(0.6)  # a folder of thousands of pods on a slow disk
        return listing()

    monkeypatch.setattr(layout, "candidates", slow_candidates)
    ticks = []

    async def main():
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.05)

        running = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        out = Recorder()
        await history.search(out, layout, {"search": "hit", "rotated": True},
                             re2.compile("hit"), settings_for(tmp_path))
        running.cancel()
        return out

    out = asyncio.run(main())
    assert out.matches() == ["web old hit", "web hit"]
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) >= 8 and max(gaps) < 0.3, gaps


def test_a_slow_search_ends_after_search_max_seconds_with_a_notice(tmp_path):
    log = tmp_path / "pods/ns_web_u1/app/0.log"
    log.parent.mkdir(parents=True)
    record = f"{T} stdout F " + ("word " * 40).strip() + "\n"
    log.write_text(record * (30 * 1024 * 1024 // len(record)))
    out = Recorder()
    started = time.monotonic()
    pattern = r"\pL[\pL\s]{300}\d"  # valid RE2, scans at about 1 MiB/s
    asyncio.run(history.search(out, CriLayout(str(tmp_path / "pods"), "ns", "*"),
                               {"search": pattern}, re2.compile(pattern),
                               settings_for(tmp_path, SEARCH_MAX_SECONDS=1)))
    took = time.monotonic() - started
    assert took < 6, took
    [notice] = out.notices()
    assert notice.code == "search_time_limit" and notice.params == {"limit": 1}
    done = [m for m in out.sent if m["type"] == "progress" and m.get("done")]
    assert len(done) == 1 and done[0]["matches"] == 0
    scanned = [m["scanned"] for m in out.sent if m["type"] == "progress" and not m.get("done")]
    assert scanned and scanned[-1] < log.stat().st_size  # 30 MiB at ~1 MiB/s: far from done
