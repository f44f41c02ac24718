"""Stream query options: parsing helpers and the error users see (no Channels imports)."""

import re

MAX_SOURCE_ID = 2**63 - 1
SOURCE_ID_RE = re.compile(r"[1-9][0-9]{0,18}")


class OptionError(ValueError):
    """A query option that cannot be used; the message is shown to the user."""


def int_option(query, name, default, minimum, maximum):
    """Read one integer query option within bounds, or raise OptionError."""
    raw = query.get(name, [None])[-1]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OptionError(f"{name} must be a whole number, got {raw[:40]!r}") from None
    if not minimum <= value <= maximum:
        raise OptionError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def bool_option(query, name):
    """Read a 0/1 query option (absent = False), or raise OptionError."""
    raw = query.get(name, ["0"])[-1]
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    raise OptionError(f"{name} must be 0 or 1, got {raw[:40]!r}")


def source_id(raw):
    """Return the source id from a URL segment, or None when it cannot be one."""
    if not isinstance(raw, str) or not SOURCE_ID_RE.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_SOURCE_ID else None
