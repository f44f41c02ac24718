"""OpenID Connect sign-in (mozilla-django-oidc): code flow with PKCE, endpoints discovered from
OIDC_ISSUER, ID tokens checked for signature (JWKS), issuer, audience, expiry and nonce, and the
user's groups taken from OIDC_GROUPS_CLAIM at every sign-in."""

import logging

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from webapp.signin import discovery, refresh
from webapp.signin.groups import sync_groups

log = logging.getLogger("tailboard.signin")

LEEWAY_SECONDS = 60


class TokenRefused(SuspiciousOperation):
    """The provider's ID token or claims did not pass a check (the reason is the message)."""


def endpoint(name):
    """Return a property reading one endpoint from the discovery document when first used."""
    return property(lambda self: discovery.metadata().get(name))


class ProviderBackend(OIDCAuthenticationBackend):
    """Signs in whoever the provider vouches for; never touches a local account.

    Django builds a backend for every authenticate() and every request's get_user(), so
    nothing here talks to the provider until a callback brings a code.
    """

    OIDC_OP_TOKEN_ENDPOINT = endpoint("token_endpoint")
    OIDC_OP_USER_ENDPOINT = endpoint("userinfo_endpoint")
    OIDC_OP_JWKS_ENDPOINT = endpoint("jwks_uri")

    def __init__(self, *args, **kwargs):
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        """Only the callback's call (code + state in the query, a nonce) is ours."""
        if "username" in kwargs or "password" in kwargs or "nonce" not in kwargs:
            return None
        return super().authenticate(request, **kwargs)

    def get_token(self, payload):
        """The token endpoint's answer; its refresh token is kept for `store_tokens`."""
        answer = super().get_token(payload)
        self.refresh_token = answer.get("refresh_token")
        return answer

    def store_tokens(self, access_token, id_token):
        """Keep the ID token (sign-out's hint) and the refresh token (`webapp.signin.refresh`)
        in the session: server-side, never sent to the browser."""
        super().store_tokens(access_token, id_token)
        token = getattr(self, "refresh_token", None)
        if token and settings.OIDC_REFRESH_SECONDS:
            self.request.session[refresh.REFRESH_TOKEN_KEY] = token
        else:
            self.request.session.pop(refresh.REFRESH_TOKEN_KEY, None)

    def get_user(self, user_id):
        """Like ModelBackend: an inactive user's session no longer signs them in."""
        return ModelBackend.get_user(self, user_id)

    def _verify_jws(self, payload, key):
        """Check the signature against the provider's key, and the issuer, audience, expiry."""
        try:
            header = jwt.get_unverified_header(payload)
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"the ID token is not a JWT: {exc}") from exc
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise TokenRefused(f"the ID token is signed with {header.get('alg')!r}, "
                               f"not OIDC_SIGN_ALGO {self.OIDC_RP_SIGN_ALGO!r}")
        try:
            return jwt.decode(payload, key, algorithms=[self.OIDC_RP_SIGN_ALGO],
                              audience=self.OIDC_RP_CLIENT_ID, issuer=settings.OIDC_ISSUER,
                              leeway=LEEWAY_SECONDS,
                              options={"require": ["iss", "aud", "exp", "iat", "sub"]})
        except jwt.InvalidSignatureError as exc:
            raise TokenRefused("the ID token's signature does not match the provider's "
                               "keys (JWKS)") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRefused(f"the ID token is for another client (aud is not "
                               f"{self.OIDC_RP_CLIENT_ID!r})") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRefused("the ID token comes from another issuer than OIDC_ISSUER") from exc
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused("the ID token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"the ID token is not valid: {exc}") from exc

    def retrieve_matching_jwk(self, token):
        """The provider's key for this token; a token naming no key of the JWKS is refused."""
        try:
            return super().retrieve_matching_jwk(token)
        except (KeyError, jwt.InvalidTokenError) as exc:
            raise TokenRefused(f"the ID token names no key of the provider's JWKS: {exc}") from exc
        except SuspiciousOperation as exc:
            raise TokenRefused("the ID token names no key of the provider's JWKS") from exc

    def verify_token(self, token, **kwargs):
        """Verify the ID token; a missing or different nonce refuses it."""
        if not token:
            raise TokenRefused("the provider's token response has no ID token")
        payload = super().verify_token(token, **kwargs)
        if kwargs.get("nonce") is not None and payload.get("nonce") != kwargs["nonce"]:
            raise TokenRefused("the ID token's nonce is not this sign-in's")
        self.id_claims = payload
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """Return the ID token's claims, completed by the userinfo endpoint when there is one."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            extra = super().get_userinfo(access_token, id_token, payload)
            if extra.get("sub") != payload.get("sub"):
                raise TokenRefused("userinfo answered for another subject than the ID token")
            claims.update(extra)
        return claims

    def username(self, claims):
        """Return the Django username the claims name (OIDC_USERNAME_CLAIM)."""
        value = claims.get(settings.OIDC_USERNAME_CLAIM)
        if not isinstance(value, str) or not value.strip() or len(value) > 150:
            raise TokenRefused(f"the claim {settings.OIDC_USERNAME_CLAIM!r} (OIDC_USERNAME_CLAIM) "
                               "is missing or not a usable username")
        return value.strip()

    def verify_claims(self, claims):
        """Claims must name the user."""
        self.username(claims)
        return True

    def filter_users_by_claims(self, claims):
        """Find the user by username (OIDC_USERNAME_CLAIM)."""
        return self.UserModel.objects.filter(username=self.username(claims))

    def create_user(self, claims):
        """Make the user on first sign-in, without a usable password, then sync it."""
        user = self.UserModel.objects.create_user(self.username(claims),
                                                  email=claims.get("email") or "")
        log.info("created user %s at their first sign-in with %s", user.username,
                 settings.OIDC_PROVIDER_NAME)
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        """Refresh name and e-mail, and make the groups the claim's (never a local account)."""
        if user.has_usable_password():
            raise TokenRefused(f"{user.username} is a local account (with a Django password): "
                               "the provider cannot sign in as it")
        for field, claim in (("first_name", "given_name"), ("last_name", "family_name"),
                             ("email", "email")):
            value = claims.get(claim)
            if isinstance(value, str):
                setattr(user, field, value[:150])
        user.save()
        sync_groups(user, group_names(claims), settings.OIDC_PROVIDER_NAME)
        return user


def is_provider_callback(request, credentials=None):
    """django-axes' whitelist: a provider's callback is no password guess and names nobody
    (the provider throttles its own sign-in); counted, its failures would lock every OIDC
    sign-in from that address (an office's NAT) after LOGIN_FAILURE_LIMIT."""
    from django.urls import reverse

    return request is not None and request.path == reverse("oidc_authentication_callback")


def group_names(claims):
    """Return the group names in OIDC_GROUPS_CLAIM (a list, or one string); none if absent."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None:
        log.warning("the provider sent no %r claim (OIDC_GROUPS_CLAIM) for %s: they keep no "
                    "group", settings.OIDC_GROUPS_CLAIM, claims.get("sub"))
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    log.warning("the %r claim is neither a list nor a string: ignored",
                settings.OIDC_GROUPS_CLAIM)
    return []

