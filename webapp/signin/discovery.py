"""The provider's endpoints, read from OIDC_ISSUER/.well-known/openid-configuration.

Fetched at the first sign-in and kept for DISCOVERY_TTL seconds; a provider that cannot be
reached raises ProviderUnavailable (the views turn it into a clear page).
"""

import threading
import time

import requests
from django.conf import settings

DISCOVERY_TTL = 3600
REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")

_cache = {}
_lock = threading.Lock()


class ProviderUnavailable(Exception):
    """The identity provider did not answer, or answered with something unusable."""


def discovery_url(issuer):
    """Return where the issuer's discovery document lives."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def metadata(refresh=False):
    """Return the provider's discovery document (cached), or raise ProviderUnavailable."""
    issuer = settings.OIDC_ISSUER
    with _lock:
        cached = _cache.get(issuer)
    if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1]
    url = discovery_url(issuer)
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:
        raise ProviderUnavailable(f"{url}: not JSON") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url}: not a JSON object")
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnavailable(f"{url} names the issuer {document.get('issuer')!r}, "
                                  f"not OIDC_ISSUER {issuer!r}")
    missing = [name for name in REQUIRED if not document.get(name)]
    if missing:
        raise ProviderUnavailable(f"{url} lacks {', '.join(missing)}")
    with _lock:
        _cache[issuer] = (time.monotonic(), document)
    return document


def cached_metadata():
    """Return the discovery document if one was fetched, else None (never a request)."""
    with _lock:
        cached = _cache.get(settings.OIDC_ISSUER)
    return cached[1] if cached else None
