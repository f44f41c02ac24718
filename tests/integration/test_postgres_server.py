"""The throwaway PostgreSQL server the tests run on: who runs it, who may connect, cleanup,
and the skip-or-fail rule when PostgreSQL is missing."""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.harness import ROOT
from tests.postgres import APP_ROLE, PostgresServer


@pytest.fixture(scope="module", autouse=True)
def postgres_variant_only(installation_database):
    """These tests are about the server itself: run them once, in the postgres variant."""
    if installation_database.kind != "postgres":
        pytest.skip("tests of the PostgreSQL test server run in the [postgres] variant")


def postmaster_pid(server):
    """Return the pid the server's postmaster.pid names."""
    return int((server.data / "postmaster.pid").read_text().split()[0])


def real_uid(pid):
    """Return the real uid of a running process."""
    status = open(f"/proc/{pid}/status").read()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def running(pid):
    """Tell whether a process is alive (a zombie awaiting its reaper is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_server_runs_as_a_non_root_user_on_loopback_with_its_socket_inside(postgres_server):
    assert real_uid(postmaster_pid(postgres_server)) != 0
    with postgres_server.admin_connection() as connection:
        settings = dict(connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'unix_socket_directories', 'port')").fetchall())
    assert settings == {"listen_addresses": "127.0.0.1", "port": str(postgres_server.port),
                        "unix_socket_directories": str(postgres_server.socket_dir)}
    assert oct(os.stat(postgres_server.root).st_mode & 0o777) == oct(0o700)


def test_app_role_is_no_superuser_and_needs_its_password(postgres_server):
    import psycopg

    url = postgres_server.create_database("roles")
    try:
        with psycopg.connect(url) as connection:
            assert connection.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                "WHERE rolname = current_user").fetchone() == (False, False, False)
            connection.execute("CREATE TABLE owned_here (id int)")
        wrong = url.replace(postgres_server.app_password, "not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgres://{APP_ROLE}@127.0.0.1:{postgres_server.port}/postgres",
                            connect_timeout=5)
    finally:
        postgres_server.drop_database(url)


def test_stop_ends_the_server_and_removes_its_folder():
    server = PostgresServer()
    pid, port, root = postmaster_pid(server), server.port, server.root
    server.stop()
    assert not root.exists()
    deadline = time.monotonic() + 5
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.stop()


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_postgresql_fails_in_ci_and_is_skipped_elsewhere(ci, outcome, tmp_path):
    env = {**os.environ, "PG_BIN_DIR": str(tmp_path / "no-postgres-here"), "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         f"--basetemp={tmp_path / 'run'}", "-k", "postgres and runs_on_the_database",
         "tests/integration/test_database_concurrency.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert outcome in done.stdout, done.stdout[-3000:]
    assert "PostgreSQL binaries not found" in done.stdout
