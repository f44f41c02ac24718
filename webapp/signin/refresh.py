"""Session refresh for OIDC sign-ins: the refresh token read again at the provider's token
endpoint, so a group removed (or a user disabled) there reaches Tailboard without a new
sign-in.

The tokens stay server-side, in the session's data (`oidc_refresh_token`, `oidc_id_token`):
the browser only ever holds the session cookie. `refresh_session` is blocking (it talks to the
provider): the stream renewal rounds run it in a thread (`webapp.streams.sessionrefresh`).
"""

import enum
import logging

import jwt
import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import SuspiciousOperation

from webapp.signin import discovery

log = logging.getLogger("tailboard.signin")

BACKEND = "webapp.signin.oidc.ProviderBackend"
REFRESH_TOKEN_KEY = "oidc_refresh_token"
ID_TOKEN_KEY = "oidc_id_token"


class Outcome(enum.Enum):
    """What one refresh did."""

    NOT_OIDC = "not an OIDC session"
    NO_REFRESH_TOKEN = "the provider gave no refresh token"
    REFRESHED = "refreshed"
    REFUSED = "refused: signed out"
    UNAVAILABLE = "the provider did not answer"


def enabled():
    """True when OIDC is configured and OIDC_REFRESH_SECONDS is not 0."""
    return bool(getattr(settings, "OIDC_ISSUER", "")) and settings.OIDC_REFRESH_SECONDS > 0


def refresh_session(store_class, session_key):
    """Refresh one session's sign-in with its refresh token; return an Outcome.

    The new claims set the user's groups (`ProviderBackend.update_user`); the new tokens
    replace the old ones in the session. A provider that refuses the refresh (400/401/403: the
    user is disabled, the provider's session ended, the token was revoked) or answers for
    someone else ends this session: its streams end with 4403 at the next re-check. A
    provider that does not answer changes nothing (tried again at the next refresh).
    """
    from webapp.signin.oidc import ProviderBackend

    data = store_class(session_key=session_key).load()
    if data.get(BACKEND_SESSION_KEY) != BACKEND:
        return Outcome.NOT_OIDC
    user = get_user_model().objects.filter(pk=data.get(SESSION_KEY)).first()
    if user is None or not user.is_active:
        return Outcome.NOT_OIDC  # the access re-check already ends this session's streams
    token = data.get(REFRESH_TOKEN_KEY)
    if not token:
        warn_no_refresh_token()
        return Outcome.NO_REFRESH_TOKEN
    backend = ProviderBackend()
    try:
        answer = backend.get_token({
            "client_id": backend.OIDC_RP_CLIENT_ID, "client_secret": backend.OIDC_RP_CLIENT_SECRET,
            "grant_type": "refresh_token", "refresh_token": token})
        claims = new_claims(backend, answer, data.get(ID_TOKEN_KEY))
        if claims is None:
            return keep_tokens(store_class, session_key, answer, Outcome.REFRESHED)
        if backend.username(claims) != user.get_username():
            raise SuspiciousOperation("the refreshed claims name another user")
        backend.update_user(user, claims)
    except (discovery.ProviderUnavailable, requests.ConnectionError, requests.Timeout,
            requests.JSONDecodeError) as exc:
        log.warning("could not refresh %s's sign-in (tried again in %s s): %s did not answer: "
                    "%s", user.get_username(), settings.OIDC_REFRESH_SECONDS,
                    settings.OIDC_PROVIDER_NAME, type(exc).__name__)
        return Outcome.UNAVAILABLE
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status not in (400, 401, 403):
            log.warning("could not refresh %s's sign-in (tried again in %s s): %s answered %s",
                        user.get_username(), settings.OIDC_REFRESH_SECONDS,
                        settings.OIDC_PROVIDER_NAME, status)
            return Outcome.UNAVAILABLE
        return sign_out(store_class, session_key, user,
                        f"{settings.OIDC_PROVIDER_NAME} refused the refresh "
                        f"({status} {error_code(exc.response)})")
    except SuspiciousOperation as exc:
        return sign_out(store_class, session_key, user,
                        f"the refreshed sign-in could not be verified: {exc}")
    return keep_tokens(store_class, session_key, answer, Outcome.REFRESHED)


_warned = []


def warn_no_refresh_token():
    """Say once per process that sessions cannot be refreshed, and what to do."""
    if not _warned:
        _warned.append(True)
        log.warning("%s gave no refresh token at sign-in: group changes there apply at the "
                    "next sign-in only (add offline_access to OIDC_SCOPES, or allow the "
                    "refresh_token grant for this client; OIDC_REFRESH_SECONDS=0 silences this)",
                    settings.OIDC_PROVIDER_NAME)


def new_claims(backend, answer, old_id_token):
    """Return the claims of a token endpoint's answer (its ID token, verified, completed by
    userinfo), or None when it brings neither (the groups stay as they are)."""
    id_token = answer.get("id_token")
    old_subject = jwt.decode(old_id_token, options={"verify_signature": False}).get(
        "sub") if old_id_token else None
    if id_token:
        key = backend.retrieve_matching_jwk(id_token)
        payload = backend.get_payload_data(id_token, key)  # signature, iss, aud, exp
        if old_subject is not None and payload.get("sub") != old_subject:
            raise SuspiciousOperation("the refreshed ID token is for another subject")
    elif backend.OIDC_OP_USER_ENDPOINT and old_subject is not None:
        payload = {"sub": old_subject}
    else:
        return None
    return backend.get_userinfo(answer.get("access_token"), id_token, payload)


def error_code(response):
    """The OAuth error code of a refused token request (never the request: it holds secrets)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error)[:60] if error else "no error code"


def sign_out(store_class, session_key, user, reason):
    """End the session: the browser is signed out and its streams end (4403)."""
    store_class(session_key=session_key).delete(session_key)
    log.warning("signed %s out of one session: %s", user.get_username(), reason)
    return Outcome.REFUSED


def keep_tokens(store_class, session_key, answer, outcome):
    """Write the new tokens into the session, keeping its expiry; a session gone meanwhile
    (signed out) stays gone."""
    store = store_class(session_key=session_key)
    if store.get(BACKEND_SESSION_KEY) != BACKEND:
        return outcome  # gone (or another sign-in) meanwhile: never made again
    expiry = stored_expiry(store_class, session_key)
    for key, name in ((REFRESH_TOKEN_KEY, "refresh_token"), (ID_TOKEN_KEY, "id_token")):
        if answer.get(name):
            store[key] = answer[name]
    if expiry is not None and "_session_expiry" not in store:
        store.set_expiry(expiry)
    try:
        store.save(must_create=False)
    except UpdateError:
        pass  # signed out meanwhile
    return outcome


def stored_expiry(store_class, session_key):
    """The expiry date a database session has now (saving would otherwise push it later)."""
    model = getattr(store_class, "get_model_class", None)
    if model is None:
        return None
    return model().objects.filter(session_key=session_key).values_list(
        "expire_date", flat=True).first()
