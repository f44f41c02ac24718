"""Debian's nginx in front of the tests' Daphne processes, with the site file the docs recommend.

`Nginx` serves `docs/nginx/tailboard.conf` itself, changing only what is deployment-specific:
the upstream's `server` lines become the given Daphne addresses, `listen 443 ssl` becomes a free
127.0.0.1 port (plain HTTP; or HTTPS with a self-signed certificate: `tls=True`) and the
certificate lines go (or name that certificate). `edit` may change the result further:
`without_upgrade` (a proxy that passes no WebSocket upgrade) and `buffering_on` (one that
buffers responses) are the variants a test can ask for. nginx runs in the foreground (`daemon
off`), with every file, temp folder and log in a folder of its own, and is stopped by `close()`.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from webapp import embedded

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "docs" / "nginx" / "tailboard.conf"
NGINX = os.environ.get("NGINX_BINARY", "/usr/sbin/nginx")

MAIN = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events {{ worker_connections 1024; }}
http {{
    log_format tests '$remote_addr "$request" $status xff="$http_x_forwarded_for" '
                     'upstream=$upstream_addr';
    access_log {dir}/access.log tests;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    include {dir}/site.conf;
}}
"""


def available():
    """Tell whether Debian's nginx binary is here."""
    return os.access(NGINX, os.X_OK)


def replace_once(text, pattern, replacement, what):
    """Replace the one match of `pattern` (a regex, multiline); fail loudly if there is not one:
    a change to the site file that the tests cannot follow must not pass unnoticed."""
    found = len(re.findall(pattern, text, flags=re.M))
    if found != 1:
        raise AssertionError(f"the nginx site should have exactly one {what}; found {found}")
    return re.sub(pattern, lambda _: replacement, text, flags=re.M)


def site_config(upstreams, port, edit=None, site=SITE, tls=None):
    """Return the docs' site file served on 127.0.0.1:`port` by the `upstreams` (host:port).

    `tls` is (certificate, key) to serve HTTPS with; without it the site is plain HTTP.
    """
    text = Path(site).read_text()
    servers = "\n".join(f"    server {address};" for address in upstreams)
    text = replace_once(text, r"^    server 127\.0\.0\.1:8000;.*$", servers, "upstream server")
    listen = f"    listen 127.0.0.1:{port} ssl;" if tls else f"    listen 127.0.0.1:{port};"
    text = replace_once(text, r"^    listen 443 ssl;$", listen, "`listen 443 ssl;`")
    certificate, key = tls or ("", "")
    text = replace_once(text, r"^    ssl_certificate .*\n",
                        f"    ssl_certificate {certificate};\n" if tls else "", "ssl_certificate")
    text = replace_once(text, r"^    ssl_certificate_key .*\n",
                        f"    ssl_certificate_key {key};\n" if tls else "", "ssl_certificate_key")
    return edit(text) if edit else text


def self_signed(folder):
    """Make a self-signed certificate for 127.0.0.1 in `folder`; return (certificate, key)."""
    certificate, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    return certificate, key


def without_upgrade(config):
    """The site without the Upgrade/Connection headers: WebSocket handshakes fail (issue 25 b)."""
    for line in ("proxy_set_header Upgrade $http_upgrade;",
                 "proxy_set_header Connection $connection_upgrade;"):
        config = replace_once(config, rf"^\s*{re.escape(line)}.*\n", "", line)
    return config


def buffering_on(config):
    """The site with nginx buffering responses (`proxy_buffering on`, issue 25 c)."""
    return replace_once(config, r"proxy_buffering off;", "proxy_buffering on;",
                        "`proxy_buffering off;`")


class Nginx:
    """nginx on a 127.0.0.1 port proxying to Daphne processes (their base URLs).

    `port` is a free one unless given; with `tls` it serves HTTPS with a self-signed certificate
    for 127.0.0.1 (`certificate`, for clients to trust).
    """

    def __init__(self, daphne_urls, edit=None, site=SITE, timeout=10, tls=False, port=None):
        self.port = port or embedded.free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.upstreams = [url.split("://", 1)[1].rstrip("/") for url in daphne_urls]
        self.process = self.log = self.certificate = None
        self.dir = Path(tempfile.mkdtemp(prefix="tailboard-nginx-"))
        try:
            keys = self_signed(self.dir) if tls else None
            self.certificate = keys[0] if keys else None
            self.config = site_config(self.upstreams, self.port, edit, site, keys)
            self._write_files()
            self.log = open(self.dir / "nginx.out", "ab")
            self.process = subprocess.Popen(
                [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                 "-e", str(self.dir / "error.log")],
                stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait(timeout)
        except BaseException:
            self.close()
            raise

    def _write_files(self):
        """Write nginx.conf, the site and the temp folders into this nginx's folder."""
        (self.dir / "site.conf").write_text(self.config)
        # As root, nginx's workers run as `nobody`: they need only the temp folders.
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        os.chmod(self.dir, 0o755)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / name).mkdir(parents=True)
            os.chmod(self.dir / "tmp" / name, 0o777)
        (self.dir / "nginx.conf").write_text(MAIN.format(dir=self.dir, user=user))

    def _wait(self, timeout):
        """Wait until nginx accepts connections on its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited ({self.process.returncode}):\n{self.errors()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.errors()}")

    def errors(self):
        """Return the end of nginx's error log and output."""
        parts = [path.read_text(errors="replace")[-3000:]
                 for path in (self.dir / "nginx.out", self.dir / "error.log") if path.exists()]
        return "\n".join(parts)

    def access_log(self):
        """Return the access log's lines (`remote_addr "request" status xff=... upstream=...`)."""
        path = self.dir / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def close(self):
        """Stop nginx (SIGQUIT, then SIGKILL) and remove its folder."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self.log:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
