"""Admin for stream records: open streams with a stop action, and the history of all streams.

Records are read-only here: only the stream lifecycle writes them. The one action, "stop
selected streams", goes through webapp.streams.control, so the viewer is told why.
"""

import logging

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from webapp.models import Stream, may_change_location
from webapp.streams import control, faults, records
from webapp.streams.aio import duration_text
from webapp.streams.kinds import on_register

log = logging.getLogger("tailboard.streams")


class StateFilter(admin.SimpleListFilter):
    """Open streams (no end yet) or ended ones."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        """Offer open and ended."""
        return [("open", "open"), ("ended", "ended")]

    def queryset(self, request, queryset):
        """Filter on whether the stream has ended."""
        if self.value() == "open":
            return queryset.filter(ended__isnull=True)
        if self.value() == "ended":
            return queryset.filter(ended__isnull=False)
        return queryset


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    """Who watched what, on which worker, from when to when, and how it ended."""

    # Few, narrow columns so the list fits a laptop screen (the end time is in the record,
    # the reason is cut with the full text on hover); templates/admin/webapp/stream/ wraps.
    list_display = ("id", "state", "username", "source", "worker", "started", "duration",
                    "sent", "how_ended")
    list_display_links = ("id",)
    list_filter = (StateFilter, "ending", "kind", "queue")
    search_fields = ("username", "source_name", "task_id", "worker")
    date_hierarchy = "started"
    actions = ["stop_selected"]
    readonly_fields = ("user", "username", "kind", "source_id", "source_name", "queue",
                       "options", "task_id", "channel_name", "worker", "started", "ended",
                       "ending", "end_reason", "lines_sent")

    @admin.display(description="state")
    def state(self, obj):
        """Open or ended."""
        return "open" if obj.ended is None else "ended"

    @admin.display(description="source", ordering="source_name")
    def source(self, obj):
        """Kind, id and name of the source."""
        return f"{obj.kind}:{obj.source_id} {obj.source_name}"

    @admin.display(description="duration")
    def duration(self, obj):
        """How long the stream has been or was open."""
        return duration_text(((obj.ended or timezone.now()) - obj.started).total_seconds())

    @admin.display(description="how it ended", ordering="ending")
    def how_ended(self, obj):
        """The typed ending and its detail, cut to a short line (the whole text on hover)."""
        if obj.ended is None:
            return "-"
        label = obj.get_ending_display() or "-"
        text = f"{label}: {obj.end_reason}" if obj.end_reason else label
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(60))

    @admin.display(description="lines sent", ordering="lines_sent")
    def sent(self, obj):
        """Lines sent to the viewer: live for open streams (as of the last lease renewal)."""
        return getattr(obj, "live_lines_sent", obj.lines_sent)

    def get_queryset(self, request):
        """Default-deny: staff see only the streams of sources they may view (superusers: all)."""
        return records.visible_to(request.user, super().get_queryset(request))

    def changelist_view(self, request, extra_context=None):
        """The list, with open streams' live line counts read from Redis in one call."""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            rows = [obj for obj in changelist.result_list if obj.ended is None]
            live = control.live_lines_sent(rows) if rows else {}
            for obj in rows:
                obj.live_lines_sent = live.get(obj.pk, obj.lines_sent)
        return response

    @admin.action(description="Stop selected streams", permissions=["stop"])
    def stop_selected(self, request, queryset):
        """Stop the selected open streams; their viewers see "stopped by an administrator"."""
        ids = list(queryset.filter(ended__isnull=True).values_list("pk", flat=True))
        skipped = queryset.count() - len(ids)
        if not ids:
            self.message_user(request, "None of the selected streams is open.", messages.WARNING)
            return
        try:
            results = control.stop_streams(ids)
        except Exception as exc:
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "admin: stopping streams %s failed", ids)
            self.message_user(request, f"Could not stop the streams: {exc}", messages.ERROR)
            return
        told = sum(1 for r in results.values() if r.ended_by == "consumer")
        text = (f"Stopped {len(results)} stream{'s' if len(results) != 1 else ''}: "
                f"{told} viewer{'s' if told != 1 else ''} told, "
                f"{len(results) - told} closed without a live connection.")
        if skipped:
            text += f" {skipped} already ended."
        self.message_user(request, text, messages.SUCCESS)

    def has_stop_permission(self, request):
        """Who may stop streams: superusers and holders of the change permission."""
        return request.user.has_perm("webapp.change_stream")

    def has_add_permission(self, request):
        """Streams are recorded by opening one, never by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Stream records are never edited."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Stream records are an audit trail; they are not deleted here."""
        return False


class SourceAdmin(admin.ModelAdmin):
    """Sources of one kind; staff see only the sources they may view (superusers: all)."""

    list_filter = ("enabled", "queue", "groups")
    filter_horizontal = ("groups",)
    kind = None

    def get_list_display(self, request):
        """Id, name, the kind's own fields, queue and enabled."""
        return ("id", "name", *self.kind.fields, "queue", "enabled")

    def get_search_fields(self, request):
        """Search by name and the kind's text fields (not its numbers, lists or flags)."""
        model = self.kind.source_model
        return ("name", *(name for name in self.kind.fields
                          if model._meta.get_field(name).get_internal_type()
                          in ("CharField", "TextField")))

    def get_queryset(self, request):
        """Default-deny: a staff member lists only sources shared with one of their groups."""
        return super().get_queryset(request).visible_to(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form, with the kind's help on where a source may read (the log roots)."""
        form = super().get_form(request, obj, change, **kwargs)
        helps = getattr(self.model, "location_help", None)
        for name, text in (helps() if helps else {}).items():
            if name in form.base_fields:
                form.base_fields[name].help_text = text
        return form

    def get_readonly_fields(self, request, obj=None):
        """What the source reads (its kind's location fields) is read-only without
        `webapp.change_source_location` (superusers have it)."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if may_change_location(request.user):
            return fields
        return fields + tuple(name for name in self.kind.location if name not in fields)

    def has_add_permission(self, request):
        """Adding a source chooses what it reads: the add permission and the location one."""
        return super().has_add_permission(request) and may_change_location(request.user)


def register_source(kind, site=admin.site):
    """Register the admin of one source kind's model (once)."""
    if not site.is_registered(kind.source_model):
        site.register(kind.source_model, type(f"{kind.source_model.__name__}Admin",
                                              (SourceAdmin,), {"kind": kind}))


on_register(register_source)

admin.site.site_header = "Tailboard administration"
admin.site.site_title = "Tailboard admin"
admin.site.index_title = "Sources, people and streams"
