"""Query options of a tail stream: `lines`, `grep`, history search and the view around a line.

History search (docs/protocol.md): `search=RE`, `context=N` (0..20), `rotated=1`, `follow=1`. The view
around a line: `around=LINE_NO` (with `lines=N` lines around it, and `file=NAME`, the name of
one of the log's files: the live file or a rotated sibling, never a path).
"""

import re2
from django.conf import settings

from webapp.streams.options import OptionError, bool_option, int_option

MAX_GREP_LENGTH = 500


def quiet():
    """RE2 options that keep its C++ logger quiet: it writes a refused pattern raw to stderr.

    A compiled pattern carries its options, so patterns derived from it stay quiet too.
    """
    options = re2.Options()
    options.log_errors = False
    return options


def compile_grep(pattern, name="grep"):
    """Compile a pattern with RE2 (linear time, no runaway patterns), or raise OptionError.

    The error names the option and carries RE2's own message.
    """
    if len(pattern) > MAX_GREP_LENGTH:
        raise OptionError(f"{name} is longer than {MAX_GREP_LENGTH} characters")
    try:
        return re2.compile(pattern, quiet())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise OptionError(f"{name} is not a valid regular expression: {detail}") from None


MAX_LINE_NO = 10**12
FILE_NAME_LENGTH = 255


def tail_options(query):
    """Return `lines` (the backlog) and `grep`, the options of every kind that tails lines."""
    lines = int_option(query, "lines", settings.TAIL_DEFAULT_BACKLOG, 0, settings.TAIL_MAX_BACKLOG)
    grep = query.get("grep", [""])[-1]
    if grep:
        compile_grep(grep)
    return {"lines": lines, "grep": grep}


def parse(query):
    """Return the tail options from a parsed query string, or raise OptionError."""
    options = tail_options(query)
    search = query.get("search", [""])[-1]
    around = int_option(query, "around", 0, 1, MAX_LINE_NO)
    if search and around:
        raise OptionError("search and around cannot be used together")
    if search:
        compile_grep(search, "search")
        options.update(search=search, context=int_option(query, "context", 0, 0, 20),
                       rotated=bool_option(query, "rotated"), follow=bool_option(query, "follow"))
    elif any(name in query for name in ("context", "rotated", "follow")):
        raise OptionError("context, rotated and follow go with search")
    if around:
        options.update(around=around, file=file_name(query.get("file", [""])[-1]))
    elif "file" in query:
        raise OptionError("file goes with around")
    return options


def file_name(raw):
    """Check a `file` option: a plain file name (no folder), or empty for the live file."""
    if raw and (len(raw) > FILE_NAME_LENGTH or "/" in raw or "\x00" in raw
                or raw in (".", "..")):
        raise OptionError("file must be the name of one of the log's files, not a path")
    return raw
