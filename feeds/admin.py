"""Admin for feed sources."""

from django.contrib import admin

from feeds.models import FeedSource


@admin.register(FeedSource)
class FeedSourceAdmin(admin.ModelAdmin):
    """Feed sources: name, URL, interval, queue, who may view."""

    list_display = ("id", "name", "url", "interval", "queue", "enabled")
    list_filter = ("enabled", "queue", "groups")
    search_fields = ("name", "url")
    filter_horizontal = ("groups",)
