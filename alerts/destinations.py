"""Apprise URLs: checked, redacted for display and logs, and which host a delivery reaches.

A destination's URL carries its secrets (webhook tokens, passwords): it is never shown back
in full. `redacted(url)` is Apprise's own privacy form of the URL (passwords and tokens
replaced by `****` or `T...Q`); a URL Apprise cannot read is shown as its scheme only.
"""

import apprise

# Schemes whose host is a server the administrator names (a webhook, an SMTP relay, a
# self-hosted push server): deliveries there pass the SSRF rule (`feeds.reach`). Other
# schemes reach their service's own public endpoint (Slack, Teams, ...), whose "host" in
# the Apprise URL is a token, not a place.
CUSTOM_HOST_SCHEMES = frozenset({
    "json", "jsons", "xml", "xmls", "form", "forms", "ntfy", "ntfys", "mailto", "mailtos",
    "gotify", "gotifys", "matrix", "matrixs", "mmost", "mmosts", "rocket", "rockets",
    "apprise", "apprises", "http", "https",
})


class BadDestination(ValueError):
    """An Apprise URL that Apprise cannot read (its text is never repeated: it may hold secrets)."""


def scheme_of(url):
    """Return the URL's scheme in lower case ('' when there is none)."""
    head, sep, _ = str(url).partition("://")
    return head.strip().lower() if sep else ""


def asset():
    """Apprise's settings for Tailboard: send in the caller's thread, follow no redirect
    (a webhook host that passed the SSRF check must not pass the alert on elsewhere)."""
    return apprise.AppriseAsset(async_mode=False, http_redirects=False)


def plugin_for(url):
    """Return Apprise's plugin object for one URL, or raise BadDestination."""
    plugin = apprise.Apprise.instantiate(str(url).strip(), asset=asset(),
                                         suppress_exceptions=True)
    if not plugin:
        scheme = scheme_of(url) or "no scheme"
        raise BadDestination(f"Apprise cannot read this URL (scheme: {scheme}); see "
                             "https://github.com/caronc/apprise/wiki for the URL forms")
    return plugin


def redacted(url):
    """Return the URL with its secrets hidden (Apprise's privacy form), for admin and logs."""
    try:
        return plugin_for(url).url(privacy=True)
    except BadDestination:
        return f"{scheme_of(url) or '?'}://(unreadable URL hidden)"


def target_host(url):
    """Return (host, port) a delivery connects to for custom-host schemes, else None."""
    if scheme_of(url) not in CUSTOM_HOST_SCHEMES:
        return None
    plugin = plugin_for(url)
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not host:
        return None
    return str(host), getattr(plugin, "port", None)
