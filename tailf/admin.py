"""Admin for log sources."""

from django.contrib import admin

from tailf.models import LogSource


@admin.register(LogSource)
class LogSourceAdmin(admin.ModelAdmin):
    """Log sources: name, path, queue, who may view."""

    list_display = ("id", "name", "path", "queue", "enabled")
    list_filter = ("enabled", "queue", "groups")
    search_fields = ("name", "path")
    filter_horizontal = ("groups",)
