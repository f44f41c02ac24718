"""Confinement to the log roots: `open_confined` and `check_under_roots` on real files."""

import os
import subprocess
import sys
import tempfile

import pytest

from tailf import roots
from tailf.roots import NotRegularFile, OutsideRoots, check_under_roots, open_confined


@pytest.fixture
def tree(tmp_path):
    """A log root with app.log, and a secret file outside it."""
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("SECRET\n")
    return root, outside / "secret"


def read_all(fd):
    """Read a descriptor to its end and close it."""
    try:
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


@pytest.fixture(params=["openat2", "plain open"])
def both_ways(request, monkeypatch):
    """Run a test with openat2 and with the plain-open fallback."""
    monkeypatch.setitem(roots._openat2, "usable", None if request.param == "openat2" else False)
    return request.param


def test_a_file_under_a_root_is_opened_read_only(tree, both_ways):
    root, _ = tree
    fd = open_confined(str(root / "app.log"), [str(root)])
    assert read_all(fd) == b"inside\n"
    with pytest.raises(OSError):
        fd = open_confined(str(root / "app.log"), [str(root)])
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)


def test_a_symlink_that_stays_inside_the_roots_is_followed(tree, both_ways):
    root, _ = tree
    os.symlink(root / "app.log", root / "absolute.log")
    os.symlink("app.log", root / "relative.log")
    assert read_all(open_confined(str(root / "absolute.log"), [str(root)])) == b"inside\n"
    assert read_all(open_confined(str(root / "relative.log"), [str(root)])) == b"inside\n"


def test_a_symlink_into_another_root_is_followed(tree, tmp_path):
    root, secret = tree
    os.symlink(secret, root / "other.log")
    assert read_all(open_confined(str(root / "other.log"),
                                  [str(root), str(secret.parent)])) == b"SECRET\n"


def test_a_symlink_out_of_the_roots_is_refused(tree, both_ways):
    root, secret = tree
    os.symlink(secret, root / "app.log.link")
    with pytest.raises(OutsideRoots, match="outside the log roots"):
        open_confined(str(root / "app.log.link"), [str(root)])


def test_dot_dot_out_of_the_root_is_refused(tree, both_ways):
    root, secret = tree
    with pytest.raises(OutsideRoots):
        open_confined(f"{root}/../outside/secret", [str(root)])
    os.mkdir(root / "sub")
    with pytest.raises(OutsideRoots):
        open_confined(f"{root}/sub/../../outside/secret", [str(root)])


def test_a_symlinked_directory_out_of_the_root_is_refused(tree, both_ways):
    root, secret = tree
    os.symlink(secret.parent, root / "dir")
    with pytest.raises(OutsideRoots):
        open_confined(str(root / "dir" / "secret"), [str(root)])


@pytest.mark.parametrize("target", ["/proc/self/environ", "/proc/self/cmdline",
                                    "/sys/kernel/mm/transparent_hugepage/enabled",
                                    "/dev/null", "/dev/zero"])
def test_proc_sys_and_dev_are_refused_even_under_the_root_slash(tree, target, both_ways):
    root, _ = tree
    os.symlink(target, root / "evil.log")
    for allowed in ([str(root)], ["/"]):
        with pytest.raises((OutsideRoots, OSError)) as caught:
            open_confined(str(root / "evil.log"), allowed)
        assert not isinstance(caught.value, NotRegularFile) or target.startswith("/dev")


def test_a_magic_link_through_proc_fd_is_refused(tree, both_ways):
    root, secret = tree
    with open(secret) as handle:
        os.symlink(f"/proc/self/fd/{handle.fileno()}", root / "magic.log")
        with pytest.raises((OutsideRoots, OSError)):
            open_confined(str(root / "magic.log"), [str(root)])
        if both_ways == "openat2":
            with pytest.raises(OSError):  # ELOOP: refused during resolution already
                open_confined(str(root / "magic.log"), ["/"])


def test_a_directory_and_a_fifo_are_not_regular_files_and_never_block(tree, both_ways):
    root, _ = tree
    os.mkdir(root / "dir.log")
    os.mkfifo(root / "fifo.log")
    with pytest.raises(NotRegularFile):
        open_confined(str(root / "dir.log"), [str(root)])
    with pytest.raises(NotRegularFile):
        open_confined(str(root / "fifo.log"), [str(root)])


def test_a_missing_file_raises_file_not_found(tree, both_ways):
    root, _ = tree
    with pytest.raises(FileNotFoundError):
        open_confined(str(root / "nope.log"), [str(root)])


def test_a_root_that_is_itself_a_symlink_works(tree, tmp_path):
    root, _ = tree
    os.symlink(root, tmp_path / "logs-link")
    fd = open_confined(str(tmp_path / "logs-link" / "app.log"), [str(tmp_path / "logs-link")])
    assert read_all(fd) == b"inside\n"


def test_a_deleted_file_held_open_is_still_judged_by_its_path(tree):
    root, _ = tree
    fd = os.open(root / "app.log", os.O_RDONLY)
    os.unlink(root / "app.log")
    try:
        assert roots.resolved_path(fd) == str(root / "app.log")
    finally:
        os.close(fd)


def test_a_file_the_worker_cannot_read_raises_permission_error(tmp_path):
    folder = tempfile.mkdtemp(prefix="tailf-perm-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "secret.log")
        with open(path, "w") as handle:
            handle.write("hidden\n")
        os.chmod(path, 0o600)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from tailf.roots import "
                "open_confined\ntry:\n    open_confined(sys.argv[2], [sys.argv[3]])\n"
                "except PermissionError:\n    print('denied')\n")
        result = run_as_nobody(code, path, folder)
        assert result.stdout.strip() == "denied", result.stderr
    finally:
        subprocess.run(["rm", "-rf", folder], check=True)


def run_as_nobody(code, *args):
    """Run Python code as uid/gid 65534 with the project importable; skip if impossible."""
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               sys.executable, "-c", code, project, *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, PermissionError):
        pytest.skip("cannot run code as another uid here")


def test_check_accepts_paths_under_a_root_existing_or_not(tree):
    root, _ = tree
    check_under_roots(str(root / "app.log"), [str(root)])
    check_under_roots(str(root / "later" / "x.log"), [str(root)])
    check_under_roots(str(root / "*.log"), [str(root)])


@pytest.mark.parametrize("path", ["{root}/../outside/secret", "/etc/shadow", "relative.log",
                                  "{root}-sibling/x.log", "{root}/link/secret"])
def test_check_refuses_paths_outside_the_roots_naming_log_roots(tree, path):
    root, secret = tree
    os.symlink(secret.parent, root / "link")
    with pytest.raises(OutsideRoots, match="LOG_ROOTS"):
        check_under_roots(path.format(root=root), [str(root)])


def test_check_refuses_proc_even_with_the_root_slash():
    with pytest.raises(OutsideRoots, match="LOG_ROOTS"):
        check_under_roots("/proc/self/environ", ["/"])
    check_under_roots("/var/log/syslog", ["/"])


def test_parse_roots_splits_on_colons_and_wants_absolute_paths():
    assert roots.parse_roots("/var/log:/srv/logs:") == ["/var/log", "/srv/logs"]
    with pytest.raises(ValueError):
        roots.parse_roots("/var/log:logs")
    with pytest.raises(ValueError):
        roots.parse_roots("")


def planted(link, target, uid=65534):
    """A symlink made by a log writer who is not root (owned by `uid`)."""
    os.symlink(target, link)
    os.lchown(link, uid, uid)


@pytest.fixture
def groups(tmp_path):
    """One root holding two groups' folders: team/ (app.log) and secret/ (secret.log)."""
    for name, text in (("team", "mine\n"), ("secret", "SECRET\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / ("app.log" if name == "team" else "secret.log")).write_text(text)
    return tmp_path


def test_a_writers_link_to_another_folder_under_the_roots_is_refused(groups, both_ways):
    planted(groups / "team" / "app.log.2", "../secret/secret.log")
    planted(groups / "team" / "abs.log", str(groups / "secret" / "secret.log"))
    for name in ("app.log.2", "abs.log"):
        with pytest.raises(OutsideRoots, match="outside its source's folder"):
            open_confined(str(groups / "team" / name), [str(groups)])
    fd = open_confined(str(groups / "team" / "app.log.2"), [str(groups)], own_folder=False)
    assert read_all(fd) == b"SECRET\n"  # the roots alone allow it


def test_a_writers_link_within_the_folder_is_followed(groups, both_ways):
    planted(groups / "team" / "current.log", "app.log")
    assert read_all(open_confined(str(groups / "team" / "current.log"),
                                  [str(groups)])) == b"mine\n"


def test_a_link_made_by_root_may_lead_to_another_folder(groups, both_ways):
    os.symlink("../secret/secret.log", groups / "team" / "chosen.log")
    assert os.lstat(groups / "team" / "chosen.log").st_uid == 0
    assert read_all(open_confined(str(groups / "team" / "chosen.log"),
                                  [str(groups)])) == b"SECRET\n"


def test_a_writers_link_behind_roots_link_cannot_go_further(groups, both_ways):
    (groups / "other").mkdir()
    os.symlink("../other/app.log", groups / "team" / "chosen.log")  # root: into other/
    planted(groups / "other" / "app.log", "../secret/secret.log")  # other's writer: out
    with pytest.raises(OutsideRoots, match="outside its source's folder"):
        open_confined(str(groups / "team" / "chosen.log"), [str(groups)])
    (groups / "other" / "app.log").unlink()
    (groups / "other" / "app.log").write_text("other\n")
    assert read_all(open_confined(str(groups / "team" / "chosen.log"),
                                  [str(groups)])) == b"other\n"
    assert roots.source_folders(str(groups / "team" / "chosen.log")) == [
        str(groups / "team"), str(groups / "other")]


def test_a_file_in_a_subfolder_is_not_in_the_sources_folder(groups, both_ways):
    (groups / "team" / "sub").mkdir()
    (groups / "team" / "sub" / "x.log").write_text("sub\n")
    planted(groups / "team" / "x.log", "sub/x.log")
    with pytest.raises(OutsideRoots, match="outside its source's folder"):
        open_confined(str(groups / "team" / "x.log"), [str(groups)])


def test_a_writers_folder_link_on_the_way_to_another_folder_is_refused(groups, both_ways):
    """A folder link planted by a writer (a pod or container folder of a container source,
    `team/sub -> ../secret`) reaches nothing; the same link made by root may."""
    planted(groups / "team" / "sub", "../secret")
    planted(groups / "team-link", "secret")
    for path in (groups / "team" / "sub" / "secret.log", groups / "team-link" / "secret.log"):
        with pytest.raises(OutsideRoots, match="outside its source's folder"):
            open_confined(str(path), [str(groups)])
        assert roots.source_folders(str(path)) == []
    os.symlink("secret", groups / "chosen")
    assert read_all(open_confined(str(groups / "chosen" / "secret.log"),
                                  [str(groups)])) == b"SECRET\n"


def test_trusted_realpath_resolves_like_realpath_through_trusted_links_only(groups):
    os.symlink("../secret", groups / "team" / "up")
    os.symlink(str(groups / "team" / "up"), groups / "abs")
    owners = roots.trusted_owners()
    for name in ("team/up", "abs", "abs/../team", "team/up/./x/../secret.log", "missing/a"):
        assert roots.trusted_realpath(str(groups / name), owners) == \
            os.path.realpath(groups / name), name
    os.symlink("loop", groups / "loop")
    assert roots.trusted_realpath(str(groups / "loop"), owners) is None
    assert roots.trusted_realpath(str(groups / "abs"), {12345}) is None


def test_links_on_the_way_to_a_root_are_the_administrators_whoever_made_them(groups,
                                                                             tmp_path_factory):
    """`LOG_ROOTS=/logs` with `/logs -> /data/logs` made by some user: only links under the
    resolved roots are a log writer's."""
    elsewhere = tmp_path_factory.mktemp("entry")
    planted(elsewhere / "logs", str(groups))
    via = elsewhere / "logs"
    assert read_all(open_confined(str(via / "team" / "app.log"), [str(via)])) == b"mine\n"
    planted(groups / "team" / "sub", "../secret")
    with pytest.raises(OutsideRoots, match="outside its source's folder"):
        open_confined(str(via / "team" / "sub" / "secret.log"), [str(via)])
