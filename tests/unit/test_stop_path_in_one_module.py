"""The path that stops a running task stays in one module (`webapp/streams/stop.py`): no
other module broadcasts a control command, revokes, takes over a signal on an event loop,
terminates a pool job, names SIGUSR1 or the `stream_revoke` command, or clears billiard's
termination marks (that one is `internals`', called from `stop.py` only)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STOP = ROOT / "webapp" / "streams" / "stop.py"
INTERNALS = ROOT / "webapp" / "streams" / "internals.py"
PACKAGES = ("webapp", "alerts", "tailf", "feeds", "journal", "containers")
CALLS = {"broadcast", "revoke", "add_signal_handler", "remove_signal_handler",
         "terminate_job", "clear_termination_marks", "pool_job"}
NAMES = {"SIGUSR1"}
TEXTS = {"stream_revoke"}


def stop_path_steps(path):
    """Return what of the stop path a Python file does itself, as "line: what" texts."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CALLS:
                found.append(f"{node.lineno}: calls {name}()")
        elif isinstance(node, ast.Attribute) and node.attr in NAMES:
            found.append(f"{node.lineno}: names {node.attr}")
        elif isinstance(node, ast.Constant) and node.value in TEXTS:
            found.append(f"{node.lineno}: names {node.value!r}")
    return found


def sources():
    """Every Python file of the project's apps (migrations aside) and the Celery app."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path
    yield ROOT / "celery_app.py"


def test_only_stop_py_stops_a_task():
    elsewhere = [f"{path.relative_to(ROOT)}:{step}" for path in sources()
                 if path not in (STOP, INTERNALS) for step in stop_path_steps(path)]
    assert elsewhere == []


def test_stop_py_holds_every_step_the_check_looks_for():
    found = " ".join(stop_path_steps(STOP))
    for step in ("broadcast()", "revoke()", "add_signal_handler()", "remove_signal_handler()",
                 "terminate_job()", "clear_termination_marks()", "pool_job()", "SIGUSR1",
                 "'stream_revoke'"):
        assert step in found


def test_the_check_sees_a_step_written_elsewhere(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import signal\n\ndef f(app, loop, cb):\n"
                      "    app.control.broadcast('stream_revoke')\n"
                      "    loop.add_signal_handler(signal.SIGUSR1, cb)\n")
    assert stop_path_steps(sample) == ["4: calls broadcast()", "5: calls add_signal_handler()",
                                       "4: names 'stream_revoke'", "5: names SIGUSR1"]
