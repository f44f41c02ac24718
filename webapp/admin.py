"""Admin for stream records: read-only, since only the stream lifecycle writes them."""

from django.contrib import admin

from webapp.models import Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    """Open and past streams: who watched what, on which worker, and how it ended."""

    list_display = ("id", "username", "kind", "source_name", "worker", "started", "ended",
                    "end_reason")
    list_filter = ("kind", ("ended", admin.EmptyFieldListFilter))
    search_fields = ("username", "source_name")

    def has_add_permission(self, request):
        """Streams are recorded by opening one, never by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Stream records are never edited."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Stream records are an audit trail; they are not deleted here."""
        return False
