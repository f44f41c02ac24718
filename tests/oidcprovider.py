"""OpenID Connect providers for the sign-in tests, on free 127.0.0.1 ports.

`NodeProvider` runs the real thing: npm's `oidc-provider` (tests/oidc/provider.mjs, installed
by `npm ci` in tests/oidc). `ForgingProvider` is a small Python provider that answers every
authorization request at once and then hands out an ID token that is wrong in a chosen way
(signed by a key that is not in its JWKS, issued for another audience, ...), to prove that
Tailboard refuses such tokens.
"""

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from webapp import embedded

FOLDER = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "tailboard"
CLIENT_SECRET = "tailboard-client-secret-" + "s" * 16


def available():
    """Tell whether node and the installed oidc-provider package are there."""
    return shutil.which("node") is not None and (FOLDER / "node_modules" / "oidc-provider"
                                                 ).is_dir()


class NodeProvider:
    """npm's oidc-provider with one confidential client (`CLIENT_ID`).

    `start(redirect_bases)`: the Tailboard base URLs allowed to receive codes and to be sent
    back to after sign-out. Accounts are set with `set_account` (read again at every sign-in).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = embedded.free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_path = self.folder / "accounts.json"
        self.accounts = {}
        self._write_accounts()
        self.process = self.log = None

    def start(self, redirect_bases):
        """Start serving on the port chosen at construction (Tailboard's env names it first)."""
        config = {"port": self.port, "accounts": str(self.accounts_path), "clients": [{
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [base + "/oidc/callback/" for base in redirect_bases],
            "post_logout_redirect_uris": [base + "/accounts/login/" for base in redirect_bases],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post"}]}
        (self.folder / "provider.json").write_text(json.dumps(config))
        self.log_path = self.folder / "provider.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["node", str(FOLDER / "provider.mjs"), str(self.folder / "provider.json")],
            cwd=FOLDER, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.close()
            raise
        return self

    def _wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("oidc-provider exited:\n" + self.log_path.read_text())
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration",
                             timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("oidc-provider did not start:\n" + self.log_path.read_text())

    def _write_accounts(self):
        temporary = self.accounts_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.accounts))
        os.replace(temporary, self.accounts_path)

    def set_account(self, login, password, groups, **claims):
        """Add or change an account: its password, its `groups` claim and any other claims."""
        self.accounts[login] = {"password": password, "claims": {
            "preferred_username": login, "email": f"{login}@tailboard.test",
            "email_verified": True, "groups": list(groups), **claims}}
        self._write_accounts()

    def remove_account(self, login):
        """Disable an account: the provider no longer knows it (sign-ins and refreshes fail)."""
        self.accounts.pop(login, None)
        self._write_accounts()

    def env(self, **extra):
        """Return the OIDC_* environment that points Tailboard at this provider."""
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_PROVIDER_NAME": "Test SSO",
                "OIDC_SCOPES": "openid email profile groups", **extra}

    def close(self):
        """Stop the provider."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.log is not None:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def b64(number):
    """Base64url of an unsigned integer (JWK)."""
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ForgingProvider:
    """A provider whose ID tokens are wrong in the way `mode` says (set it per test):

    "good" (correct), "wrong-key" (signed by a key not in the JWKS), "other-audience"
    (`aud` is another client), "other-issuer", "expired", "no-nonce" (the nonce is missing);
    or no token at all: "token-refused" (400 invalid_grant), "token-hang" (never answers).
    """

    def __init__(self):
        self.mode = "good"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.nonces = {}
        self.token_requests = []
        self.released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, content_type="application/json", headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self.reply(200, provider.metadata())
                elif url.path == "/jwks":
                    public = provider.key.public_key().public_numbers()
                    self.reply(200, {"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256",
                                               "use": "sig", "n": b64(public.n),
                                               "e": b64(public.e)}]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = f"code-{len(provider.nonces)}"
                    provider.nonces[code] = query.get("nonce")
                    target = query["redirect_uri"] + "?" + urlencode(
                        {"code": code, "state": query["state"]})
                    self.reply(302, b"", "text/plain", [("Location", target)])
                elif url.path == "/userinfo":
                    self.reply(200, {"sub": "mallory", "preferred_username": "mallory",
                                     "groups": ["ops"]})
                else:
                    self.reply(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                if urlparse(self.path).path != "/token":
                    self.reply(404, {"error": "not found"})
                    return
                if provider.mode == "token-hang":
                    provider.released.wait(30)
                    return
                if provider.mode == "token-refused":
                    self.reply(400, {"error": "invalid_grant"})
                    return
                self.reply(200, {"access_token": "at-" + form.get("code", ""),
                                 "token_type": "Bearer", "expires_in": 300,
                                 "refresh_token": f"rt-{len(provider.token_requests)}",
                                 "id_token": provider.id_token(form.get("code"))})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metadata(self):
        """The discovery document."""
        return {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "userinfo_endpoint": self.issuer + "/userinfo",
                "id_token_signing_alg_values_supported": ["RS256"]}

    def id_token(self, code):
        """An ID token for `mallory`, wrong in the current mode's way."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "mallory", "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "nonce": self.nonces.get(code),
                  "preferred_username": "mallory", "groups": ["ops"]}
        key = self.key
        if self.mode == "wrong-key":
            key = self.other_key
        elif self.mode == "other-audience":
            claims["aud"] = "some-other-client"
        elif self.mode == "other-issuer":
            claims["iss"] = "http://127.0.0.1:1"
        elif self.mode == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.mode == "no-nonce":
            del claims["nonce"]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    def env(self, **extra):
        """Return the OIDC_* environment that points Tailboard at this provider."""
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_PROVIDER_NAME": "Forging SSO",
                **extra}

    def close(self):
        """Stop serving."""
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
