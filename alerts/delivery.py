"""Sending one alert to its destinations through Apprise: all at once, each retried alone.

Every destination is sent from a thread of its own, so a slow or failing one never delays
the others; a failed send is retried with a doubling pause (1 s, 2 s, 4 s, ...) up to
ALERT_DELIVERY_ATTEMPTS attempts. Before any connection, a destination whose URL names its
own server (a webhook, an SMTP relay, ntfy, ...) has that host resolved and checked by the
feeds' SSRF rule (`feeds.reach`): public addresses, or internal ones ALERT_INTERNAL_ALLOW
lists. Results and logs show destinations by name and redacted URL only.
"""

import asyncio
import concurrent.futures
import logging
import time

import apprise
from django.conf import settings

from alerts import destinations
from webapp.streams import faults

log = logging.getLogger("tailboard.alerts")

SENT = "sent"
FIRST_PAUSE = 1.0
MAX_PAUSE = 30.0
MAX_DETAIL = 300


class Refused(Exception):
    """The destination's host is not one alerts may reach (nothing was connected)."""


def check_host(url, allow=None, resolver=None, is_public=None):
    """Raise Refused unless the URL's own server (if it names one) passes the SSRF rule."""
    from feeds import addresses, reach

    target = destinations.target_host(url)
    if target is None:
        return
    host, _ = target
    allow = allow if allow is not None else reach.parse_allow(settings.ALERT_INTERNAL_ALLOW)
    try:
        asyncio.run(reach.checked(host, allow, False, resolver, is_public))
    except addresses.Unresolvable as exc:
        raise Refused(str(exc)) from None
    except reach.Refused as exc:
        raise Refused(f"{exc.host} resolves to the internal address {exc.address}, which "
                      "ALERT_INTERNAL_ALLOW does not list") from None


def send_once(url, title, body, timeout):
    """Send one message with Apprise; return None when sent, else what went wrong."""
    plugin = destinations.plugin_for(url)
    for name in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(plugin, name):
            setattr(plugin, name, timeout)
    plugin.redirects = False  # a host that passed the SSRF check passes nothing on
    sender = apprise.Apprise(asset=destinations.asset())
    sender.add(plugin)
    # Plain text in: Apprise escapes it for services that render HTML or Markdown, so a log
    # line cannot inject markup (or a Slack mention) into the message.
    result = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
    if result:
        return None
    return failure_reason(result)[:MAX_DETAIL]


def failure_reason(result):
    """The last warning or error Apprise recorded for the send (its URLs are redacted)."""
    lines = []
    for service in getattr(result, "results", ()) or ():
        logs = getattr(service, "logs", None)
        for entry in (logs() if callable(logs) else ()):
            if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL"):
                lines.append(str(getattr(entry, "message", "")))
    return lines[-1] if lines else "Apprise reported a failure"


def deliver_one(name, url, title, body, attempts=None, timeout=None, sleep=time.sleep,
                checker=check_host):
    """Send to one destination with retries; return "sent" or "failed: why" / "refused: why"."""
    attempts = attempts or settings.ALERT_DELIVERY_ATTEMPTS
    timeout = timeout or settings.ALERT_DELIVERY_TIMEOUT
    shown = destinations.redacted(url)
    try:
        checker(url)
    except Refused as exc:
        log.warning("alert destination %s (%s) refused: %s", name, shown, exc)
        return f"refused: {exc}"
    except destinations.BadDestination as exc:
        return f"failed: {exc}"
    pause = FIRST_PAUSE
    why = "not sent"
    for attempt in range(1, attempts + 1):
        try:
            why = send_once(url, title, body, timeout)
        except Exception as exc:  # Apprise's plugins raise OSErrors and ValueErrors
            if not isinstance(exc, (OSError, ValueError)):
                faults.contained(log, "alert to %s (%s): sending failed", name, shown)
            why = f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]
        if why is None:
            log.info("alert sent to %s (%s) on attempt %s", name, shown, attempt)
            return SENT
        log.warning("alert to %s (%s) failed on attempt %s of %s: %s", name, shown, attempt,
                    attempts, why)
        if attempt < attempts:
            sleep(pause)
            pause = min(MAX_PAUSE, pause * 2)
    return f"failed after {attempts} attempts: {why}"


def deliver(targets, title, body, **options):
    """Send to every (name, url) target in parallel; return {name: result}."""
    targets = list(targets)
    if not targets:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets),
                                               thread_name_prefix="alert-send") as pool:
        futures = {name: pool.submit(deliver_one, name, url, title, body, **options)
                   for name, url in targets}
        return {name: future.result() for name, future in futures.items()}
