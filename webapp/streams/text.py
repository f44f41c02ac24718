"""What streams tell people: every status text and notice with a stable code and parameters.

`say(code, **params)` returns the English text (a `str`, usable anywhere a message is) that
also carries `code` and `params`; `protocol.status` and `protocol.notice` send them as
`message_code` and `message_params` next to `message`, and the
dashboard renders the code in the page's language, falling back to the English `message`.
The catalogue below is the one list of codes (docs/protocol.md documents it). Pure module: no
Django, Celery or Channels, so the engines use it too.
"""

CATALOGUE = {
    # status texts
    "queued": "waiting for a worker on queue {queue} ({online} online)",
    "following": "following {name}",
    "searching": "searching {name}",
    "reading_around": "reading {name} around line {line}",
    "watching": "watching {name} every {interval} s",
    "stopped_by_viewer": "stopped by the viewer",
    "stopped_by_admin": "stopped by an administrator",
    "source_ended": "the source ended",
    "search_finished": "search finished",
    "duration_limit": "stream duration limit reached ({limit}); start it again to continue",
    "worker_lost": "worker lost: no sign of life from {worker} for {seconds} s",
    "redis_lost": "lost contact with Redis: {error}",
    "server_error": "server error; see the server log",
    "not_logged_in": "not logged in",
    "no_source": "no such {kind} source",
    "forbidden": "you may not view {kind} source {id}",
    "bad_option": "bad option: {error}",
    "too_many_user": "too many streams: you have {count} open, the limit is {limit} per user",
    "too_many_total": "too many streams: the server has {count} open, the limit is {limit}",
    "too_many_pool": "too many {what}: you have {count} running, the limit is {limit} per user",
    "access_deactivated": "your account was deactivated or removed",
    "access_logged_out": "you were logged out; log in again to continue",
    "access_revoked": "you may no longer view {name}",
    "source_removed": "source {name} was removed or disabled",
    "too_slow": "viewer too slow: {mib} MiB waiting for this connection; reconnect to catch up",
    "poll_lapsed": "no poll for {seconds} s: the stream ended; reconnect to go on",
    # tail notices
    "file_waiting": "{path} {reason}; waiting for it",
    "file_truncated": "{path} was truncated; reading from its new start",
    "rotated_released": "{path}: stopped reading the rotated file ({why})",
    "polling": "{reason}; checking {path} by polling",
    "inotify_back": "inotify works again; watching {path}",
    "glob_limit": ("{count} files match {pattern}; following the {limit} most recently written "
                   "(TAILF_MAX_FILES={limit})"),
    "file_missing": "{path} does not exist; waiting for it",
    "file_missing_dir": "{path} does not exist, nor does its directory; waiting for it",
    "file_denied": "{path} cannot be read (permission denied); waiting for it",
    "file_not_regular": "{path} is not a regular file; waiting for it",
    "file_not_searched": "{path} is no longer the file that was searched; reading it from its start",
    "file_replaced": "{path} is no longer the file read before; reading it from its start",
    "file_appeared": "{path} appeared; following it",
    "file_appeared_start": "{path} appeared; following it from its start",
    "file_appeared_rotated": "{path} appeared (a rotated file read up to here); following it",
    "file_recreated": "{path} was recreated; following the new file",
    "file_recreated_grace": ("{path} was recreated; following the new file; the old file is read "
                             "for {seconds} s more"),
    "file_relinked": "{path} now points to another file; following it",
    "file_relinked_grace": ("{path} now points to another file; following it; the old file is "
                            "read for {seconds} s more"),
    "file_rotated": ("{path} was rotated; the old file was read to its end, following the new "
                     "one"),
    "file_rotated_grace": ("{path} was rotated; following the new file; the old file is read for "
                           "{seconds} s more"),
    "file_removed": ("{path} was removed or renamed (does not exist now); waiting for it to "
                     "reappear"),
    "file_removed_grace": ("{path} was removed or renamed (does not exist now); waiting for it to "
                           "reappear; the old file is read for {seconds} s more"),
    "file_removed_other": ("{path} was removed or renamed ({reason} now); waiting for it to "
                           "reappear"),
    "rotated_quiet": "{path}: stopped reading the rotated file (quiet for {seconds} s)",
    "rotated_limit": "{path}: stopped reading the rotated file (after the {seconds} s limit)",
    "rotated_many": ("{path}: stopped reading the rotated file ({count} newer rotated files are "
                     "being read)"),
    "rotated_many_left": ("{path}: stopped reading the rotated file ({count} newer rotated files "
                          "are being read; its last {size} bytes are not read)"),
    "glob_nothing": "no file matches {pattern} yet; waiting for one",
    # tail warnings (the reason a running stream is degraded)
    "path_missing": "{path} does not exist",
    "path_missing_dir": "{path} does not exist, nor does its directory",
    "path_denied": "{path} cannot be read (permission denied)",
    "path_not_regular": "{path} is not a regular file",
    "path_problem": "{path} {reason}",
    "glob_no_match": "no file matches {pattern}",
    "glob_gone": "{path} is gone; no longer following it",
    "glob_not_regular": "{path} matches {pattern} but is not a regular file; skipped",
    "glob_full": ("{path} matches {pattern} but {limit} files are followed already "
                  "(TAILF_MAX_FILES={limit}); not following it"),
    # search notices
    "search_max_matches": ("stopped after {limit} matches; use a narrower search pattern to "
                           "see the rest"),
    "search_rotated": "{path} was rotated during the search; searching the new file too",
    "search_truncated": "{path} was truncated during the search; its search ends here",
    "search_time_limit": ("stopped after {limit} s of searching (SEARCH_MAX_SECONDS); use a "
                          "narrower search pattern or fewer files to see the rest"),
    "search_glob_limit": ("{count} files match {pattern}; searching the {limit} most recently "
                          "written (TAILF_MAX_FILES={limit}), {skipped} left out"),
    "search_file_limit": "only the newest {limit} of {count} files are searched",
    "search_missing": "{path} does not exist; not searched",
    "search_denied": "{path} cannot be read (permission denied); not searched",
    "search_refused": "{path} is not searched: {error}",
    "search_not_regular": "{path} is not a regular file; not searched",
    "search_rewritten": ("{path} was truncated or rewritten during the search; its search ends "
                         "here"),
    "search_corrupt": "{path}: {problem}; the rest of it is not searched",
    "unknown_message": "ignored a message the server does not understand",
    "message_too_large": ("refused a message from the browser: longer than {limit} "
                          "characters"),
    "message_too_deep": "refused a message from the browser: nested deeper than {limit} levels",
    # feed notices and warnings
    "feed_moved": "the feed has moved permanently to {url}; using the new address from now on",
    "feed_retry": "{error}; next attempt in {seconds} s",
    "feed_back_one": "the feed answers again after 1 failed attempt",
    "feed_back": "the feed answers again after {count} failed attempts",
    "feed_invalid": ("the feed is not entirely valid ({problem}); showing the {count} entries "
                     "that could be read"),
    "feed_slower": ("the feed asks not to be fetched more often than every {seconds} s "
                    "(Cache-Control max-age / ttl); polling every {seconds} s"),
    "feed_failing": "the feed has failed {count} or more times in a row; last error: {error}",
    "feed_unreachable": "the feed cannot be fetched: {error}; next attempt at {at}",
    "feed_failing_retry": ("the feed has failed {count} or more times in a row; last error: "
                           "{error}; next attempt at {at}"),
}


def register_messages(codes):
    """Add a kind's own message codes to the catalogue (from its AppConfig.ready()).

    A code already there with another text is refused: codes are one namespace.
    """
    for code, text in codes.items():
        if CATALOGUE.get(code, text) != text:
            raise ValueError(f"message code {code!r} is already in the catalogue")
        CATALOGUE[code] = text


class Said(str):
    """English text that also carries its catalogue code and parameters."""

    code = ""
    params = None


def say(code, **params):
    """Return the catalogue text of `code` with `params` filled in, carrying both."""
    text = Said(CATALOGUE[code].format(**params))
    text.code = code
    text.params = {key: value if isinstance(value, (int, float)) else str(value)
                   for key, value in params.items()}
    return text


def fields(text):
    """Return {"message_code", "message_params"} for a Said text, {} for any other string.

    (Not "code": a `status error` already carries the close code under that name.)
    """
    if isinstance(text, Said):
        return {"message_code": text.code, "message_params": dict(text.params)}
    return {}


def from_fields(message, fields):
    """Rebuild a Said text from a message and its fields (after a trip through Redis)."""
    code = fields.get("message_code")
    if code in CATALOGUE:
        try:
            return say(code, **fields.get("message_params", {}))
        except (KeyError, IndexError, ValueError):
            pass
    return message
