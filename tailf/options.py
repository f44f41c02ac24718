"""Query options of a tail stream: `lines` (backlog) and `grep` (server-side filter)."""

import re2
from django.conf import settings

from webapp.streams.options import OptionError, int_option

MAX_GREP_LENGTH = 500


def compile_grep(pattern):
    """Compile a grep pattern with RE2 (linear time, no runaway patterns), or raise OptionError with the regex error text."""
    if len(pattern) > MAX_GREP_LENGTH:
        raise OptionError(f"grep is longer than {MAX_GREP_LENGTH} characters")
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise OptionError(f"grep is not a valid regular expression: {detail}") from None


def parse(query):
    """Return {'lines': int, 'grep': str} from a parsed query string."""
    lines = int_option(query, "lines", settings.TAIL_DEFAULT_BACKLOG, 0, settings.TAIL_MAX_BACKLOG)
    grep = query.get("grep", [""])[-1]
    if grep:
        compile_grep(grep)
    return {"lines": lines, "grep": grep}
