"""The registry of source kinds: each kind's app registers itself once, the rest loops over it.

A kind is what a viewer can stream: a log file, a feed, the next one. Its app calls
`register(Kind(...))` from its `AppConfig.ready()`; routing, the dashboard, `/healthz`, the
`sources` command, the admin and the Celery task all read the registry and never import an app.
"""

from dataclasses import dataclass
from typing import Callable

from django.apps import apps


@dataclass(frozen=True)
class Kind:
    """One kind of source and everything the shared lifecycle needs to stream it.

    slug: the one word users see ("log", "feed"); url: the WebSocket path segment
    (`/ws/<url>/<id>/`); model: "app_label.ModelName" of the source model (a `Source`);
    run: the async body `run(out, source, options, worker)` of the kind's task;
    parse_options: query dict -> options dict (raises OptionError); describe: source ->
    what to show next to its name (path, URL); task_name: the Celery task's name;
    options_template: the template of the kind's option fields in the dashboard pane;
    resumable: a reconnect can resume where the lines stopped (the browser sends them back);
    fields: the model fields `sources list` shows; add_argument: (field, help) of the
    positional argument of `sources add-<slug>` (empty: none); add_options: (flag, field,
    type, help) of its options beyond --queue and --group (type `list`: a repeatable flag
    whose values make a list); pools: options -> the `Pool`s (extra per-user limits, beside
    STREAM_MAX_PER_USER) a stream with these options takes a slot in; location_fields: the
    model fields that say *what* a source reads (a path, a URL), which only superusers and
    holders of `webapp.change_source_location` may set (None: all the model's own fields).
    """

    slug: str
    label: str
    url: str
    model: str
    run: Callable
    parse_options: Callable
    describe: Callable
    task_name: str = ""
    default_queue: str = ""
    options_template: str = ""
    resumable: bool = False
    fields: tuple = ()
    add_argument: tuple = ()
    add_options: tuple = ()
    pools: Callable = None
    location_fields: tuple = None

    @property
    def location(self):
        """The fields that say what a source reads, `queue` (which host reads it) included.

        A kind that declares none gets every field of its model but the shared name,
        enabled and groups: default-deny.
        """
        fields = self.location_fields
        if fields is None:
            fields = tuple(field.name for field in self.source_model._meta.get_fields()
                           if field.concrete and not field.primary_key
                           and field.name not in ("name", "enabled", "groups"))
        return tuple(dict.fromkeys((*fields, "queue")))

    @property
    def source_model(self):
        """Return the source model class."""
        return apps.get_model(self.model)

    @property
    def task(self):
        """Return the Celery task that runs one stream of this kind."""
        from webapp.streams.task import task_for

        return task_for(self)


@dataclass(frozen=True)
class Pool:
    """An extra per-user limit some streams of a kind count against (refused with 4429).

    name: the pool's key ("search"), shared by every kind that uses it; limit: how many
    streams of one user may hold a slot at once; what: the English plural for the refusal
    ("searches").
    """

    name: str
    limit: int
    what: str


_KINDS = {}
_LISTENERS = []


def register(kind):
    """Register a kind (idempotent for the same slug and model); return it."""
    known = _KINDS.get(kind.slug)
    if known is not None and known.model != kind.model:
        raise ValueError(f"source kind {kind.slug!r} is already registered for {known.model}")
    _KINDS[kind.slug] = kind
    from webapp.streams.task import task_for

    task_for(kind)
    for listener in _LISTENERS:
        listener(kind)
    return kind


def on_register(listener):
    """Call `listener(kind)` for every kind registered so far and every one registered later.

    Apps whose ready() runs before the kinds' apps (the admin's autodiscovery) use this.
    """
    _LISTENERS.append(listener)
    for kind in list(_KINDS.values()):
        listener(kind)


def all_kinds():
    """Return the registered kinds in registration order."""
    return list(_KINDS.values())


def get(slug):
    """Return the kind with this slug, or raise LookupError."""
    try:
        return _KINDS[slug]
    except KeyError:
        raise LookupError(f"no source kind {slug!r}; known: {', '.join(_KINDS)}") from None
