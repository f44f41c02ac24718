"""docs/nginx/tailboard.conf is the one nginx site: docs/deploy.md points to it instead of a copy,
and the tests' nginx (tests/nginx.py) changes nothing in it but addresses and TLS."""

import re
import subprocess
from pathlib import Path

import pytest

from tests import nginx

DEPLOY = Path(nginx.ROOT) / "docs" / "deploy.md"


def test_deploy_guide_points_to_the_site_file_and_pastes_no_copy():
    guide = DEPLOY.read_text()
    assert "](nginx/tailboard.conf)" in guide
    assert not re.search(r"^\s*proxy_(pass|set_header)\b", guide, flags=re.M)
    assert "```nginx" not in guide


def test_the_tests_change_only_addresses_and_tls():
    original = nginx.SITE.read_text().splitlines()
    served = nginx.site_config(["127.0.0.1:9001", "127.0.0.1:9002"], 9000).splitlines()
    removed = [line for line in original if line not in served]
    added = [line for line in served if line not in original]
    assert [line.split()[0] for line in removed] == [
        "server", "listen", "ssl_certificate", "ssl_certificate_key"]
    assert added == ["    server 127.0.0.1:9001;", "    server 127.0.0.1:9002;",
                     "    listen 127.0.0.1:9000;"]


def changed_lines(edit):
    """Return (removed, added) lines of a variant against the served site."""
    served = nginx.site_config(["127.0.0.1:9001"], 9000).splitlines()
    variant = nginx.site_config(["127.0.0.1:9001"], 9000, edit).splitlines()
    return ([line.strip() for line in served if line not in variant],
            [line.strip() for line in variant if line not in served])


def test_the_variants_change_only_their_own_lines():
    removed, added = changed_lines(nginx.without_upgrade)
    assert [line.split("#")[0].strip() for line in removed] == [
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;"] and added == []
    removed, added = changed_lines(nginx.buffering_on)
    assert len(removed) == 1 and removed[0].startswith("proxy_buffering off;")
    assert len(added) == 1 and added[0].startswith("proxy_buffering on;")


@pytest.mark.parametrize("edit", [None, nginx.without_upgrade, nginx.buffering_on])
def test_the_served_site_passes_nginx_own_check(tmp_path, edit):
    if not nginx.available():
        pytest.skip(f"{nginx.NGINX} is missing (apt-get install nginx)")
    site = tmp_path / "site.conf"
    site.write_text(nginx.site_config(["127.0.0.1:9001"], 9000, edit))
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                    f"events {{}}\nhttp {{ include {site}; }}\n")
    check = subprocess.run([nginx.NGINX, "-t", "-p", str(tmp_path), "-c", str(main),
                            "-e", str(tmp_path / "error.log")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
