"""HTTP security headers that Django 5.2 does not set itself: the Content-Security-Policy."""

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def build_policy(directives):
    """Join {directive: [sources]} into one policy header value."""
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Add `Content-Security-Policy` (settings.CONTENT_SECURITY_POLICY) to every response.

    A view that sets its own header keeps it. Works in sync and async stacks.
    """

    def process_response(self, request, response):
        """Set the header unless the response already has one."""
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        if policy and HEADER not in response:
            response[HEADER] = build_policy(policy)
        return response
