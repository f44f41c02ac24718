"""A Redis that can fail over, for real: a master, a replica and three sentinels on loopback.

`SentinelGroup` starts them on free 127.0.0.1 ports, each in a folder of its own, with a
short `down-after-milliseconds` and `failover-timeout` so that a killed master is replaced
within a few seconds; it waits until every sentinel knows the replica and the two other
sentinels (a failover needs that). The sentinels are Debian's `redis-sentinel`, or
`redis-server --sentinel` when that is missing. `close()` stops them all.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from webapp import embedded

MASTER_NAME = "tailboard"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 6000


def sentinel_command(config):
    """The command that runs a sentinel with this configuration file."""
    found = shutil.which("redis-sentinel") or (
        "/usr/bin/redis-sentinel" if os.access("/usr/bin/redis-sentinel", os.X_OK) else None)
    if found:
        return [found, str(config)]
    return [embedded.redis_server_binary(), str(config), "--sentinel"]


def available():
    """Tell why sentinels cannot run here (a text), or None when they can."""
    if shutil.which("redis-sentinel") or os.access("/usr/bin/redis-sentinel", os.X_OK):
        return None
    try:
        embedded.redis_server_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


class SentinelGroup:
    """One master, one replica, three sentinels; `master_port` follows failovers."""

    def __init__(self, workdir, sentinels=3):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.servers = {}  # port -> Popen of a redis-server (master or replica)
        self.sentinel_processes = []
        try:
            self.first_master_port, master = embedded.start_free_redis(self.workdir / "master")
            self.servers[self.first_master_port] = master
            replica_port = embedded.free_port()
            self.servers[replica_port] = self._start_replica(replica_port)
            self.sentinel_ports = [embedded.free_port() for _ in range(sentinels)]
            for port in self.sentinel_ports:
                self.sentinel_processes.append(self._start_sentinel(port))
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    # -- starting ------------------------------------------------------------------------

    def _start_replica(self, port):
        folder = self.workdir / f"replica-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "redis.log", "ab") as log:
            process = subprocess.Popen(
                [embedded.redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
                 "--save", "", "--appendonly", "no", "--dir", str(folder),
                 "--replicaof", "127.0.0.1", str(self.first_master_port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(lambda: embedded.redis_answers(f"redis://127.0.0.1:{port}/0"), 10,
                   f"the replica on port {port} did not answer")
        return process

    def _start_sentinel(self, port):
        folder = self.workdir / f"sentinel-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\ndir {folder}\n"
            f"logfile {folder / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.first_master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        return subprocess.Popen(sentinel_command(config), stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _wait(predicate, timeout, failure):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(failure)

    def wait_ready(self, timeout=60):
        """Wait until every sentinel sees the master, a synced replica and the other sentinels."""
        def ready():
            for port in self.sentinel_ports:
                client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1,
                                     decode_responses=True)
                try:
                    master = client.sentinel_master(MASTER_NAME)
                    if int(master.get("num-slaves", 0)) < 1:
                        return False
                    if int(master.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1:
                        return False
                finally:
                    client.close()
            replica = self.replica_ports()
            return replica and redis.Redis(
                host="127.0.0.1", port=replica[0], socket_timeout=1).info(
                "replication").get("master_link_status") == "up"
        self._wait(ready, timeout, "the sentinels did not see the master, the replica and "
                                   f"each other within {timeout} s (logs in {self.workdir})")

    # -- what tests use ------------------------------------------------------------------

    @property
    def sentinels(self):
        """The sentinels' addresses, as REDIS_SENTINELS wants them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self):
        """The settings that make Tailboard find Redis through these sentinels."""
        return {"REDIS_SENTINELS": self.sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME,
                "REDIS_URL": "redis://127.0.0.1:1/0"}  # host and port unused: the sentinels say

    def master_address(self):
        """(host, port) of the master a sentinel names now (the first that answers)."""
        sentinel = Sentinel([("127.0.0.1", port) for port in self.sentinel_ports],
                            socket_timeout=1)
        return sentinel.discover_master(MASTER_NAME)

    @property
    def master_port(self):
        """The port of the master the sentinels name now."""
        return self.master_address()[1]

    def replica_ports(self):
        """Ports of the running servers other than the current master."""
        master = self.master_port
        return [port for port, process in self.servers.items()
                if port != master and process.poll() is None]

    def client(self):
        """A blocking client of whatever is master now (found through the sentinels)."""
        sentinel = Sentinel([("127.0.0.1", port) for port in self.sentinel_ports],
                            sentinel_kwargs={"socket_timeout": 1})
        return sentinel.master_for(MASTER_NAME, socket_timeout=5, socket_connect_timeout=2)

    def kill_master(self):
        """SIGKILL the current master; return its port."""
        port = self.master_port
        process = self.servers[port]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return port

    def wait_promotion(self, old_port, timeout=60):
        """Wait until the sentinels name a new master that answers as one; return its port."""
        found = []

        def promoted():
            port = self.master_port
            if port == old_port:
                return False
            role = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).info(
                "replication").get("role")
            found.append(port)
            return role == "master"
        self._wait(promoted, timeout, f"no replica was promoted within {timeout} s "
                                      f"(logs in {self.workdir})")
        return found[-1]

    def close(self):
        """Stop the sentinels, then the servers."""
        for process in [*self.sentinel_processes, *self.servers.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.sentinel_processes, *self.servers.values()]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
