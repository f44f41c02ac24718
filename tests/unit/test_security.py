"""Security settings: CSP header, login throttling, production refusals and `check --deploy`."""

import os
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth.models import User

from tests.harness import ROOT
from webapp.security import build_policy

GOOD_KEY = secrets.token_urlsafe(45)  # 60 characters
SECURE = {"SECURE_SSL_REDIRECT": "1", "SECURE_HSTS_SECONDS": "31536000",
          "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "SECURE_HSTS_PRELOAD": "1"}


def directives(response):
    """Parse the response's Content-Security-Policy into {directive: value}."""
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def production(tmp_path, *args, **env):
    """Run `manage.py ARGS` with TAILBOARD_ENV=production and this environment."""
    base = {key: value for key, value in os.environ.items()
            if key not in ("DEBUG", "SECRET_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
                           "SECURE_COOKIES", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")}
    base.update(TAILBOARD_ENV="production", ALLOWED_HOSTS="example.com",
                DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                DJANGO_SETTINGS_MODULE="webapp.settings", PYTHONPATH=str(ROOT))
    base.update(env)
    base = {key: value for key, value in base.items() if value is not None}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=60)


def test_policy_is_built_from_directives():
    assert build_policy({"default-src": ["'self'"], "img-src": ["'self'", "data:"]}) == \
        "default-src 'self'; img-src 'self' data:"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/admin/login/"])
def test_every_page_has_a_csp_without_inline_script(client, path):
    response = client.get(path)
    policy = directives(response)
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_templates_have_no_inline_script_or_handlers(client):
    user = User.objects.create_user("csp", password="pw-csp-123456")
    client.force_login(user)
    for path in ("/", "/accounts/login/"):
        html = client.get(path).content.decode()
        for tag in html.split("<script")[1:]:
            opening = tag.split(">", 1)[0]
            data_block = 'type="application/json"' in opening  # json_script: never run
            assert "src=" in opening or data_block, f"inline script on {path}"
        assert " onerror=" not in html and " onclick=" not in html and " onload=" not in html


@pytest.mark.django_db
def test_login_is_throttled_per_username_and_address(client, settings):
    User.objects.create_user("target", password="right-password-1")
    User.objects.create_user("other", password="right-password-2")
    limit = settings.AXES_FAILURE_LIMIT

    def attempt(username, password):
        return client.post("/accounts/login/", {"username": username, "password": password})

    for _ in range(limit - 1):
        assert attempt("target", "wrong").status_code == 200
    assert attempt("target", "wrong").status_code == 429
    locked = attempt("target", "right-password-1")
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    assert attempt("other", "right-password-2").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_failure_count(client, settings):
    User.objects.create_user("forgetful", password="right-password-3")
    for _ in range(3):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert client.post("/accounts/login/", {"username": "forgetful",
                                                    "password": "wrong"}).status_code == 200
        assert client.post("/accounts/login/", {"username": "forgetful",
                                                "password": "right-password-3"}).status_code == 302
        client.logout()


def test_login_throttling_is_configured_for_username_and_address(settings):
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AXES_COOLOFF_TIME.total_seconds() > 0
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_check_deploy_is_clean_in_production(tmp_path):
    done = production(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                      SECRET_KEY=GOOD_KEY, DEBUG="0", **SECURE)
    assert done.returncode == 0, done.stderr
    assert "no issues (0 silenced)" in done.stdout


def test_production_cookies_are_secure_and_http_only(tmp_path):
    code = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY, "
            "s.SECURE_PROXY_SSL_HEADER, s.DEBUG)")
    done = production(tmp_path, "shell", "-c", code, SECRET_KEY=GOOD_KEY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == \
        "True True True True ('HTTP_X_FORWARDED_PROTO', 'https') False"


@pytest.mark.parametrize("env, message", [
    ({"SECRET_KEY": GOOD_KEY, "DEBUG": "1"}, "refuses DEBUG=1"),
    ({"SECRET_KEY": None}, "needs SECRET_KEY"),
    ({"SECRET_KEY": ""}, "needs SECRET_KEY"),
    ({"SECRET_KEY": "too-short"}, "needs SECRET_KEY"),
    ({"SECRET_KEY": "django-insecure-" + "x" * 60}, "needs SECRET_KEY"),
    ({"SECRET_KEY": "ab" * 30}, "fewer than 5 different characters"),
])
def test_production_refuses_to_start_with_insecure_settings(tmp_path, env, message):
    done = production(tmp_path, "check", **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr
