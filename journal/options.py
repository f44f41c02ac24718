"""Query options of a journal stream: `lines` (backlog of matching entries), `grep`, `after`.

`after=CURSOR` resumes right after that entry (a cursor a `lines` frame carried); with it,
`lines` is ignored.
"""

import re

from tailf.options import tail_options
from webapp.streams.options import OptionError

MAX_CURSOR_LENGTH = 300
# sd_journal_get_cursor(3): "s=…;i=…;b=…;m=…;t=…;x=…", each value hexadecimal.
CURSOR_RE = re.compile(r"[a-z]=[0-9a-f]{1,64}(?:;[a-z]=[0-9a-f]{1,64}){0,9}")


def parse(query):
    """Return the journal options from a parsed query string, or raise OptionError."""
    options = tail_options(query)
    after = query.get("after", [""])[-1]
    if after:
        options["after"] = cursor(after)
    return options


def cursor(raw):
    """Check an `after` cursor (length and form), or raise OptionError."""
    if len(raw) > MAX_CURSOR_LENGTH or not CURSOR_RE.fullmatch(raw):
        raise OptionError("after must be a journal cursor (s=…;i=…;b=…;m=…;t=…;x=…) "
                          f"of at most {MAX_CURSOR_LENGTH} characters")
    return raw
