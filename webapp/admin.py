"""Admin for stream records: open streams with a stop action, and the history of all streams.

Records are read-only here: only the stream lifecycle writes them. The one action, "stop
selected streams", goes through webapp.control, so the viewer is told why.
"""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from webapp import control
from webapp.models import Stream

# How a stream ended, from the reasons the lifecycle records (first match wins).
ENDINGS = [
    ("client stop", "client stop", ("client stop",)),
    ("disconnect", "disconnect", ("disconnect",)),
    ("admin", "admin", ("admin",)),
    ("limit", "limit", ("limit",)),
    ("lost", "lost (lease expired)", ("lost", "viewer gone")),
    ("error", "error", ("error", "failed")),
    ("ended", "the source ended", ("stopped",)),
]


def ending_of(reason):
    """Return the kind of ending (client stop, disconnect, admin, limit, lost, error...)."""
    for key, _, prefixes in ENDINGS:
        if reason.startswith(prefixes):
            return key
    return "other" if reason else ""


def duration_text(seconds):
    """Format a duration as 1 h 02 min, 3 min 05 s or 12 s."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


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


class EndingFilter(admin.SimpleListFilter):
    """How a stream ended: client stop, disconnect, admin, limit, lost, error, ended."""

    title = "how it ended"
    parameter_name = "ending"

    def lookups(self, request, model_admin):
        """Offer each kind of ending."""
        return [(key, label) for key, label, _ in ENDINGS]

    def queryset(self, request, queryset):
        """Filter on the recorded end reason."""
        for key, _, prefixes in ENDINGS:
            if self.value() == key:
                query = Q()
                for prefix in prefixes:
                    query |= Q(end_reason__startswith=prefix)
                return queryset.filter(query, ended__isnull=False)
        return queryset


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    """Who watched what, on which worker, from when to when, and how it ended."""

    list_display = ("id", "state", "username", "source", "worker", "started", "ended",
                    "duration", "sent", "ending", "end_reason")
    list_display_links = ("id",)
    list_filter = (StateFilter, EndingFilter, "kind", "queue")
    search_fields = ("username", "source_name", "task_id", "worker")
    date_hierarchy = "started"
    actions = ["stop_selected"]
    readonly_fields = ("user", "username", "kind", "source_id", "source_name", "queue",
                       "options", "task_id", "channel_name", "worker", "started", "ended",
                       "end_reason", "lines_sent")

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

    @admin.display(description="lines sent", ordering="lines_sent")
    def sent(self, obj):
        """Lines sent to the viewer: live for open streams (as of the last lease renewal)."""
        return getattr(obj, "live_lines_sent", obj.lines_sent)

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

    @admin.display(description="how it ended")
    def ending(self, obj):
        """The kind of ending; empty while open."""
        return ending_of(obj.end_reason) if obj.ended else ""

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
