"""The sign-in pages: the login page (password form, the provider's button), the redirect to
the provider and its callback, and sign-out, which also ends the provider's session."""

import logging
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.translation import gettext as _
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from webapp.signin import discovery
from webapp.signin.forms import LoginForm

log = logging.getLogger("tailboard.signin")


def oidc_enabled():
    """True when OIDC_ISSUER (with its client) is configured."""
    return bool(getattr(settings, "OIDC_ISSUER", ""))


def provider_name():
    """Return OIDC_PROVIDER_NAME."""
    return settings.OIDC_PROVIDER_NAME


class LoginPage(auth_views.LoginView):
    """Django's login page, with "Sign in with PROVIDER" and what went wrong, if anything."""

    authentication_form = LoginForm
    signin_error = None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_provider"] = provider_name() if oidc_enabled() else None
        context["signin_error"] = self.signin_error
        context["password_form"] = password_form_shown(self.request)
        return context


def password_form_shown(request):
    """The password form is for everyone while passwords are on or LDAP checks them; with
    AUTH_PASSWORD=0 alone, only for the emergency superuser, at ?password=1."""
    return (settings.AUTH_PASSWORD or bool(settings.LDAP_SERVER_URI)
            or request.method == "POST" or request.GET.get("password") == "1")


def signin_failed(request, message, status):
    """Answer with the login page saying `message`, with this HTTP status."""
    response = LoginPage.as_view(signin_error=message)(request)
    response.status_code = status
    return response


def unreachable(request, exc):
    """The provider did not answer: log why, tell the user."""
    log.error("sign-in with %s failed: the provider did not answer: %s", provider_name(), exc)
    return signin_failed(request, _(
        "%(provider)s did not answer, so you cannot sign in with it now. Try again in a "
        "minute; if it persists, tell your administrator.") % {"provider": provider_name()}, 503)


def admin_login(request, extra_context=None):
    """The admin's login: with OIDC, the login page that offers the provider; else Django's."""
    from django.contrib import admin
    from django.contrib.auth.views import redirect_to_login
    from django.urls import reverse

    if oidc_enabled() and request.method == "GET" and not request.user.is_authenticated:
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"))
    return admin.site.login(request, extra_context)


class OidcOnly(View):
    """404 unless OIDC is configured."""

    def dispatch(self, request, *args, **kwargs):
        if not oidc_enabled():
            raise Http404("OIDC sign-in is not configured")
        return super().dispatch(request, *args, **kwargs)


class SignInView(OidcOnly, OIDCAuthenticationRequestView):
    """Send the browser to the provider (authorization code flow with PKCE)."""

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)  # the endpoint comes from discovery, at request time
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        try:
            self.OIDC_OP_AUTH_ENDPOINT = discovery.metadata()["authorization_endpoint"]
        except discovery.ProviderUnavailable as exc:
            return unreachable(request, exc)
        return super().get(request)


class CallbackView(OidcOnly, OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code: check everything, sign in."""

    def get(self, request):
        try:
            return super().get(request)
        except (discovery.ProviderUnavailable, requests.ConnectionError,
                requests.Timeout) as exc:
            return unreachable(request, exc)
        except requests.RequestException as exc:
            log.warning("sign-in with %s refused by the provider: %s", provider_name(), exc)
            return signin_failed(request, _(
                "%(provider)s refused the sign-in. Start again from this page.")
                % {"provider": provider_name()}, 400)
        except SuspiciousOperation as exc:
            log.warning("sign-in with %s refused: %s", provider_name(), exc)
            return signin_failed(request, _(
                "The answer from %(provider)s could not be verified, so the sign-in was "
                "refused. Start again from this page.") % {"provider": provider_name()}, 400)

    def login_failure(self):
        error = self.request.GET.get("error")
        if error:
            log.warning("sign-in with %s failed: the provider answered %s (%s)",
                        provider_name(), error[:100],
                        self.request.GET.get("error_description", "")[:300])
        else:
            log.warning("sign-in with %s failed: no such sign-in was started in this "
                        "browser, or the user may not sign in (see above)", provider_name())
        return signin_failed(self.request, _(
            "Sign-in with %(provider)s did not succeed. Try again; if it persists, tell your "
            "administrator.") % {"provider": provider_name()}, 403)


class SignOutView(auth_views.LogoutView):
    """Sign out here, then at the provider too when it offers an end_session_endpoint."""

    def post(self, request, *args, **kwargs):
        id_token = request.session.get("oidc_id_token")
        response = super().post(request, *args, **kwargs)
        if id_token and oidc_enabled():
            target = provider_logout_url(request, id_token)
            if target:
                return HttpResponseRedirect(target)
        return response


def provider_logout_url(request, id_token):
    """Return the provider's end-session URL for this sign-out, or None when it has none."""
    try:
        end_session = discovery.metadata().get("end_session_endpoint")
    except discovery.ProviderUnavailable as exc:
        log.warning("signed out here only: %s did not answer: %s", provider_name(), exc)
        return None
    if not end_session:
        return None
    back = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    return end_session + ("&" if "?" in end_session else "?") + urlencode({
        "id_token_hint": id_token, "post_logout_redirect_uri": back,
        "client_id": settings.OIDC_RP_CLIENT_ID})
