"""The embedded redis-server: `start_redis` succeeds only when its own server answers."""

import pytest

from webapp import embedded


def test_a_port_another_redis_holds_is_a_failure_not_a_borrowed_server(redis_server, tmp_path):
    port = int(redis_server.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(RuntimeError, match="another server holds it"):
        embedded.start_redis(port, tmp_path / "second", wait=3)
    assert embedded.redis_answers(redis_server)  # the first server is untouched


def test_a_free_port_server_is_the_one_answering(tmp_path):
    port, process = embedded.start_free_redis(tmp_path / "free")
    try:
        assert embedded.redis_pid(f"redis://127.0.0.1:{port}/0") == process.pid
    finally:
        process.terminate()
        process.wait(10)
