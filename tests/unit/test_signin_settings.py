"""The sign-in settings refuse what cannot work, by name, and put the backends in order; the
groups claim is read in the shapes providers send it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.signin.oidc import group_names

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = {"LDAP_SERVER_URI": "ldap://127.0.0.1:1", "LDAP_USER_SEARCH": "ou=people,dc=x",
             "LDAP_GROUP_SEARCH": "ou=groups,dc=x", "LDAP_BIND_PASSWORD": "bind-secret-123"}
PROVIDER = {"OIDC_ISSUER": "https://idp.example.com/", "OIDC_CLIENT_ID": "tailboard",
            "OIDC_CLIENT_SECRET": "client-secret-456"}


def load_settings(**env):
    """Import the settings in a fresh interpreter; return (backends or None, stderr)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LDAP_", "OIDC_", "AUTH_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import json; from webapp import settings; "
                               "print(json.dumps(settings.AUTHENTICATION_BACKENDS))"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "webapp.settings", **env},
        capture_output=True, text=True, timeout=60)
    backends = json.loads(result.stdout) if result.returncode == 0 else None
    return backends, result.stderr


@pytest.mark.parametrize("env, message", [
    ({"AUTH_PASSWORD": "0"}, "AUTH_PASSWORD=0 leaves no way to sign in"),
    ({**DIRECTORY, "LDAP_USER_SEARCH": ""}, "LDAP_USER_SEARCH (a base DN) is needed"),
    ({**DIRECTORY, "LDAP_GROUP_TYPE": "Bogus"}, "LDAP_GROUP_TYPE='Bogus' is not a group type"),
    ({**DIRECTORY, "LDAP_GROUP_TYPE": "LDAPGroup"}, "is not a group type"),
    ({**DIRECTORY, "LDAP_TIMEOUT": "0"}, "LDAP_TIMEOUT=0 is below the minimum 1"),
    ({**PROVIDER, "OIDC_CLIENT_SECRET": ""}, "OIDC_CLIENT_SECRET is needed too"),
    ({**PROVIDER, "OIDC_ISSUER": "http://idp.example.com"}, "OIDC_ISSUER must be an https://"),
])
def test_an_unusable_sign_in_setting_is_refused_by_name(env, message):
    backends, stderr = load_settings(**env)
    assert backends is None and message in stderr
    assert "bind-secret-123" not in stderr and "client-secret-456" not in stderr


def test_without_directory_settings_the_backends_are_unchanged():
    backends, _ = load_settings()
    assert backends == ["axes.backends.AxesStandaloneBackend",
                        "django.contrib.auth.backends.ModelBackend"]


def test_the_directory_comes_before_local_passwords_and_axes_stays_first():
    backends, _ = load_settings(**DIRECTORY, **PROVIDER)
    assert backends == ["axes.backends.AxesStandaloneBackend",
                        "webapp.signin.oidc.ProviderBackend",
                        "webapp.signin.ldap.DirectoryBackend",
                        "django.contrib.auth.backends.ModelBackend"]


def test_password_off_keeps_only_the_emergency_superusers_backend():
    backends, _ = load_settings(**PROVIDER, AUTH_PASSWORD="0")
    assert "django.contrib.auth.backends.ModelBackend" not in backends
    assert "webapp.signin.emergency.EmergencyBackend" not in backends
    backends, _ = load_settings(**PROVIDER, AUTH_PASSWORD="0", AUTH_EMERGENCY_SUPERUSERS="bg")
    assert backends[-1] == "webapp.signin.emergency.EmergencyBackend"


@pytest.mark.parametrize("claims, names", [
    ({"groups": ["ops", "dev"]}, ["ops", "dev"]),
    ({"groups": "ops"}, ["ops"]),
    ({"groups": ["ops", 7, None, {"x": 1}]}, ["ops"]),
    ({"groups": {"ops": True}}, []),
    ({}, []),
])
def test_the_groups_claim_is_read_in_the_shapes_providers_send(claims, names):
    assert group_names(claims) == names
