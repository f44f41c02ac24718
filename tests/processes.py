"""What a test can read about real processes from /proc (Linux)."""

from pathlib import Path


def pool_children(harness, worker=None):
    """Return the pids of a worker's pool processes (the harness's first worker by default)."""
    main = (worker or harness.worker).pid
    try:
        return [int(pid) for pid in
                Path(f"/proc/{main}/task/{main}/children").read_text().split()]
    except OSError:
        return []
