"""What webapp/streams/internals.py relies on is still there, in the versions it was written
for: a library upgrade that moves or drops one of those internals fails here, by name, before
it fails a stream."""

import importlib
import importlib.metadata
import inspect
import pathlib
import re

import pytest

from webapp.streams import internals

ROOT = pathlib.Path(__file__).resolve().parents[2]


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins():
    """The `name==version` pins of requirements.txt and requirements-native.txt, by canonical
    name."""
    pins = {}
    text = "\n".join((ROOT / name).read_text()
                     for name in ("requirements.txt", "requirements-native.txt"))
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def resolve(dotted):
    """Import a module, or a class or function inside one, by its dotted path."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def sources(owner):
    """The source of a function or module, or of a class and its bases from the same library."""
    if not inspect.isclass(owner):
        return [inspect.getsource(owner)]
    top = owner.__module__.split(".")[0]
    return [inspect.getsource(cls) for cls in owner.__mro__
            if cls.__module__.split(".")[0] == top]


def missing(reliance):
    """Say what is missing of one reliance, or return None when it is there."""
    where = f"{reliance.library} {reliance.owner}"
    try:
        owner = resolve(reliance.owner)
    except (ImportError, AttributeError) as exc:
        return f"{where} is gone ({exc!r}); internals needs it for {reliance.used_by}"
    if reliance.in_source:
        found = any(reliance.name in text for text in sources(owner))
    else:  # an attribute of a class in C (systemd-python's reader) has no source to look in
        found = hasattr(owner, reliance.name) or any(
            re.search(rf"\bself\.{re.escape(reliance.name)}\b", text)
            for text in sources(owner))
    if found:
        return None
    return (f"{where} no longer has {reliance.name!r}; internals needs it for "
            f"{reliance.used_by}")


@pytest.mark.parametrize("library", sorted(internals.WRITTEN_AGAINST))
def test_each_library_reached_into_is_installed_and_pinned_at_the_version_it_was_written_for(
        library):
    written_for = internals.WRITTEN_AGAINST[library]
    pinned = requirement_pins().get(canonical(library))
    installed = importlib.metadata.version(library)
    assert pinned == written_for, (
        f"requirements.txt pins {library} at {pinned}, but webapp/streams/internals.py was "
        f"written against {written_for}: read its {library} functions against the new "
        f"version, then move WRITTEN_AGAINST with the pin")
    assert installed == written_for, (
        f"{library} {installed} is installed, but webapp/streams/internals.py was written "
        f"against {written_for}: install requirements.txt, or check internals against "
        f"{installed}")


@pytest.mark.parametrize("reliance", internals.RELIANCES,
                         ids=lambda r: f"{r.library}:{r.owner.rsplit('.', 1)[-1]}.{r.name[:30]}")
def test_each_internal_relied_on_is_still_there(reliance):
    assert reliance.library in internals.WRITTEN_AGAINST, (
        f"{reliance.library} is relied on but has no version in WRITTEN_AGAINST")
    problem = missing(reliance)
    assert problem is None, problem


def test_the_check_names_the_library_and_attribute_that_went_missing():
    gone = internals.Reliance("redis", "redis.asyncio.connection.AbstractConnection",
                              "_no_such_writer", "a test")
    assert missing(gone) == ("redis redis.asyncio.connection.AbstractConnection no longer has "
                             "'_no_such_writer'; internals needs it for a test")
    moved = internals.Reliance("billiard", "billiard.pool.NoSuchPool", "_process_by_pid",
                               "a test")
    assert missing(moved).startswith("billiard billiard.pool.NoSuchPool is gone")
    assert missing(internals.Reliance("channels", "channels.consumer.AsyncConsumer.__call__",
                                      "no such text", "a test", in_source=True))


def test_no_stream_module_but_internals_reads_what_internals_relies_on():
    """The private and undocumented attributes listed stay in internals.py."""
    names = {reliance.name for reliance in internals.RELIANCES
             if reliance.name.startswith("_") or reliance.name in ("receive_buffer", "dataBuffer")}
    pattern = re.compile(r"[.\"'](%s)\b" % "|".join(map(re.escape, sorted(names))))
    found = [f"{path.name}:{number}: {match[1]}"
             for path in sorted((ROOT / "webapp" / "streams").glob("*.py"))
             if path.name != "internals.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for match in pattern.finditer(line)]
    assert not found, f"library internals used outside webapp/streams/internals.py: {found}"
