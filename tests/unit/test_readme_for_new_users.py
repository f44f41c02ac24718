"""The README tells a new user what Tailboard is (with a screenshot that exists) before any
command, and has the sections people look for: users and access, upgrading, backup, logs, a
second worker."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_what_tailboard_is_and_a_screenshot_come_before_the_first_command():
    first_command = README.index("```sh")
    before = README[:first_command]
    assert "Tailboard is a live tail" in before
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", before)
    assert images and all((ROOT / image).is_file() for image in images)
    assert README[first_command:].split("```", 2)[1].strip().startswith("sh\nscripts/up")


def test_the_sections_a_new_operator_looks_for_exist():
    headings = re.findall(r"(?m)^## (.+)$", README)
    for wanted in ("Users, groups and access", "Upgrading", "Backup", "Tailboard's own logs"):
        assert wanted in headings


def test_a_second_worker_is_shown_with_its_own_name_and_the_log_roots():
    workers = README.split("## Workers", 1)[1].split("\n## ", 1)[0]
    assert "-n w2@%h" in workers and "LOG_ROOTS" in workers
