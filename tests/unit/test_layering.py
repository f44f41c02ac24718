"""The stream framework knows no source kind: `webapp` imports neither `tailf` nor `feeds`,
and option parsing (run in workers) needs no Channels."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIND_APPS = ("tailf", "feeds")


def imported_modules(path):
    """Return every module name a Python file imports (at any depth in the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_webapp_imports_no_source_kind_app():
    offenders = []
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for name in imported_modules(path):
            if name.split(".")[0] in KIND_APPS:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_layering_check_sees_an_import_when_there_is_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from tailf.models import LogSource\n")
    assert "tailf.models" in imported_modules(sample)


def test_option_parsers_import_no_channels():
    code = ("import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'webapp.settings'\n"
            "import django; django.setup()\n"
            "before = {m for m in sys.modules if m.startswith('channels.generic')}\n"
            "import tailf.options, feeds.options, webapp.streams.options\n"
            "print(sorted(m for m in sys.modules if m.startswith('channels.generic')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
