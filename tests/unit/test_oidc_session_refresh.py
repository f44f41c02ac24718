"""An OIDC session refresh (refresh token at the provider's token endpoint, here the small
forging provider, a real HTTP server): new groups and tokens on success, the session signed
out when the provider refuses or the answer cannot be verified, left alone when the provider
does not answer; once per OIDC_REFRESH_SECONDS per session, across processes."""

import asyncio
import logging

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from tests import oidcprovider
from webapp import embedded
from webapp.signin import discovery, refresh
from webapp.signin.refresh import Outcome
from webapp.streams.sessionrefresh import Refresher

pytestmark = pytest.mark.django_db(transaction=True)

OLD_REFRESH_TOKEN = "old-refresh-token-" + "r" * 20


@pytest.fixture
def forging(settings):
    """The forging provider, configured as Tailboard's OIDC provider."""
    with oidcprovider.ForgingProvider() as forger:
        point_at(settings, forger.issuer)
        yield forger
    discovery._cache.clear()


def point_at(settings, issuer):
    settings.OIDC_ISSUER = issuer
    settings.OIDC_PROVIDER_NAME = "Forging SSO"
    settings.OIDC_RP_CLIENT_ID = oidcprovider.CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = oidcprovider.CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_USE_NONCE = True
    settings.OIDC_REFRESH_SECONDS = 60
    settings.AUTHENTICATION_BACKENDS = [refresh.BACKEND,
                                        "django.contrib.auth.backends.ModelBackend"]
    discovery._cache.clear()


@pytest.fixture
def signin_log():
    """The text logged to `tailboard.signin` (which does not propagate) during a test."""
    messages = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("tailboard.signin")
    logger.addHandler(handler)

    class Text:
        def __contains__(self, text):
            return text in "\n".join(messages)

        def count(self, text):
            return "\n".join(messages).count(text)

    yield Text()
    logger.removeHandler(handler)


@pytest.fixture
def signed_in():
    """mallory, signed in with the provider (groups: dev); returns her session's key."""
    for name in ("ops", "dev"):
        Group.objects.create(name=name)
    user = User.objects.create_user("mallory")
    user.groups.add(Group.objects.get(name="dev"))
    store = SessionStore()
    store.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: refresh.BACKEND,
                  HASH_SESSION_KEY: user.get_session_auth_hash(),
                  refresh.REFRESH_TOKEN_KEY: OLD_REFRESH_TOKEN})
    store.create()
    return store.session_key


def groups():
    return sorted(User.objects.get(username="mallory").groups.values_list("name", flat=True))


def test_a_refresh_reads_the_groups_again_and_keeps_the_new_tokens(forging, signed_in):
    expiry = Session.objects.get(session_key=signed_in).expire_date
    assert refresh.refresh_session(SessionStore, signed_in) is Outcome.REFRESHED
    assert groups() == ["ops"]
    sent = forging.token_requests[-1]
    assert sent["grant_type"] == "refresh_token" and sent["refresh_token"] == OLD_REFRESH_TOKEN
    data = SessionStore(session_key=signed_in).load()
    assert data[refresh.REFRESH_TOKEN_KEY] == "rt-1", "the rotated refresh token is kept"
    assert data[refresh.ID_TOKEN_KEY].count(".") == 2
    assert Session.objects.get(session_key=signed_in).expire_date == expiry, \
        "a refresh does not lengthen the session"


def test_a_refused_refresh_signs_the_session_out(forging, signed_in, signin_log):
    forging.mode = "token-refused"
    assert refresh.refresh_session(SessionStore, signed_in) is Outcome.REFUSED
    assert not Session.objects.filter(session_key=signed_in).exists()
    assert groups() == ["dev"], "the groups stay until the next sign-in"
    assert ("signed mallory out of one session: Forging SSO refused the refresh "
            "(400 invalid_grant)") in signin_log
    assert OLD_REFRESH_TOKEN not in signin_log and oidcprovider.CLIENT_SECRET not in signin_log


@pytest.mark.parametrize("mode", ["wrong-key", "other-audience", "expired"])
def test_a_refreshed_id_token_that_does_not_verify_signs_the_session_out(forging, signed_in,
                                                                         signin_log, mode):
    forging.mode = mode
    assert refresh.refresh_session(SessionStore, signed_in) is Outcome.REFUSED
    assert not Session.objects.filter(session_key=signed_in).exists()
    assert "the refreshed sign-in could not be verified" in signin_log
    assert groups() == ["dev"]


def test_a_provider_that_does_not_answer_leaves_the_session_alone(settings, signed_in, signin_log):
    point_at(settings, f"http://127.0.0.1:{embedded.free_port()}")
    settings.OIDC_TIMEOUT = 2
    assert refresh.refresh_session(SessionStore, signed_in) is Outcome.UNAVAILABLE
    data = SessionStore(session_key=signed_in).load()
    assert data[refresh.REFRESH_TOKEN_KEY] == OLD_REFRESH_TOKEN
    assert "could not refresh mallory's sign-in (tried again in 60 s)" in signin_log
    discovery._cache.clear()


def test_a_password_session_is_not_refreshed(forging, signed_in):
    store = SessionStore(session_key=signed_in)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store.save()
    assert refresh.refresh_session(SessionStore, signed_in) is Outcome.NOT_OIDC
    assert forging.token_requests == []


async def test_each_session_is_refreshed_once_per_interval_across_processes(
        forging, signed_in, redis_client):
    session = SessionStore(session_key=signed_in)
    first, second = Refresher(), Refresher()  # two Daphne processes
    for _ in range(3):
        first.poke([session, session])
        second.poke([session])
        await asyncio.sleep(0.05)
    for _ in range(100):
        if not first.running and not second.running:
            break
        await asyncio.sleep(0.05)
    assert len(forging.token_requests) == 1
    assert 55 <= redis_client.ttl(next(iter(redis_client.keys("tailboard:oidc-refresh:*")))) <= 60
    assert signed_in.encode() not in b"".join(redis_client.keys("*"))


def test_a_session_without_a_refresh_token_is_left_alone_and_said_once(forging, signed_in,
                                                                         signin_log):
    store = SessionStore(session_key=signed_in)
    del store[refresh.REFRESH_TOKEN_KEY]
    store.save()
    refresh._warned.clear()
    for _ in range(2):
        assert refresh.refresh_session(SessionStore, signed_in) is Outcome.NO_REFRESH_TOKEN
    assert forging.token_requests == [] and groups() == ["dev"]
    assert "Forging SSO gave no refresh token at sign-in" in signin_log
    assert signin_log.count("gave no refresh token") == 1


async def test_redis_down_at_the_claim_is_a_notice_and_retried_later(forging, signed_in,
                                                                     settings, signin_log):
    settings.REDIS_URL = f"redis://127.0.0.1:{embedded.free_port()}/0"
    refresher = Refresher()
    refresher.poke([SessionStore(session_key=signed_in)])
    for _ in range(200):
        if not refresher.running:
            break
        await asyncio.sleep(0.05)
    assert not refresher.running and forging.token_requests == []
    assert "an OIDC session refresh failed (tried again in 60 s)" in signin_log
