"""Admin for alert rules, destinations (superusers only; URLs shown redacted) and firings."""

from django import forms
from django.contrib import admin, messages
from django.utils.text import Truncator

from alerts import delivery
from alerts.access import rules_visible_to
from alerts.models import AlertDestination, AlertEvent, AlertRule, validate_apprise_url
from alerts.runner import send_test
from webapp.streams.kinds import all_kinds


class DestinationForm(forms.ModelForm):
    """The URL is write-only: never sent back to the browser; empty keeps the current one."""

    url = forms.CharField(
        label="Apprise URL", required=False, max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"size": 80,
                                                              "autocomplete": "off"}),
        help_text=AlertDestination._meta.get_field("url").help_text
        + " Leave empty to keep the current URL.")

    class Meta:
        model = AlertDestination
        fields = ("name", "url")

    def clean_url(self):
        """Require a URL for a new destination; keep the stored one when left empty."""
        value = self.cleaned_data.get("url", "").strip()
        if not value:
            if self.instance.pk:
                return self.instance.url
            raise forms.ValidationError("An Apprise URL is required.")
        validate_apprise_url(value)
        return value


class SuperuserOnly:
    """Only superusers see, add, change or delete (the URLs hold secrets)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


@admin.register(AlertDestination)
class AlertDestinationAdmin(SuperuserOnly, admin.ModelAdmin):
    """Destinations, with the URL redacted."""

    form = DestinationForm
    list_display = ("name", "redacted_url")
    search_fields = ("name",)
    readonly_fields = ("redacted_url",)
    fields = ("name", "redacted_url", "url")

    @admin.display(description="URL (secrets hidden)")
    def redacted_url(self, obj):
        """The redacted URL."""
        return obj.redacted_url if obj.pk else "-"


def source_choices(user=None):
    """The sources of every registered kind this user may see, as ("kind:id", name) groups."""
    choices = []
    for kind in all_kinds():
        sources = kind.source_model.objects.all()
        if user is not None:
            sources = sources.visible_to(user)
        group = [(f"{kind.slug}:{source.pk}", source.name)
                 for source in sources.order_by("name")]
        if group:
            choices.append((kind.label, group))
    return choices


class RuleForm(forms.ModelForm):
    """Choose the source among all registered kinds' sources."""

    source = forms.ChoiceField(help_text="Any source of any kind; the rule reads what a "
                                         "viewer of it would see.")

    class Meta:
        model = AlertRule
        fields = ("name", "source", "pattern", "threshold", "window", "cooldown",
                  "resolved_message", "destinations", "enabled", "groups")

    user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "---------")] + source_choices(self.user)
        if self.instance.pk:
            self.initial["source"] = f"{self.instance.kind}:{self.instance.source_id}"

    def clean_source(self):
        """Split "kind:id" onto the model's fields."""
        value = self.cleaned_data["source"]
        kind, _, pk = value.partition(":")
        if not pk.isdigit():
            raise forms.ValidationError("Choose a source.")
        self.instance.kind = kind
        self.instance.source_id = int(pk)
        return value


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """Rules: saving one restarts its task; disabling or deleting revokes it."""

    form = RuleForm
    list_display = ("name", "source", "pattern_short", "threshold", "window", "cooldown",
                    "enabled", "state")
    list_filter = ("enabled", "kind")
    search_fields = ("name", "pattern")
    filter_horizontal = ("destinations", "groups")
    readonly_fields = ("state", "state_changed")
    actions = ["send_test"]

    def get_form(self, request, obj=None, **kwargs):
        """The form lists only the sources the user may see."""
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_queryset(self, request):
        """Staff see only the rules whose firings they may see (their sources' rules)."""
        return rules_visible_to(request.user)

    def has_add_permission(self, request):
        """Rules send a source's lines to destinations: superusers only make or change them."""
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request)

    @admin.display(description="source")
    def source(self, obj):
        """kind:name of the source."""
        return obj.source_label

    @admin.display(description="pattern", ordering="pattern")
    def pattern_short(self, obj):
        """The pattern, cut."""
        return Truncator(obj.pattern).chars(60)

    @admin.action(description="Send a test message to the selected rules' destinations",
                  permissions=["change"])
    def send_test(self, request, queryset):
        """Send a test message and say each destination's result."""
        for rule in queryset:
            results = send_test(rule)
            level = messages.SUCCESS if all(r == delivery.SENT for r in results.values()) \
                else messages.WARNING
            text = "; ".join(f"{name}: {result}" for name, result in results.items())
            self.message_user(request, f"{rule.name}: {text or 'no destinations'}", level)


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    """Every firing, resolution and test, read-only."""

    list_display = ("time", "rule", "event", "matches", "suppressed", "results_short")
    list_filter = ("event", ("rule", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "time"
    readonly_fields = ("rule", "time", "event", "matches", "suppressed", "samples", "results",
                       "worker")

    def get_queryset(self, request):
        """Staff see only the events of rules whose source they may see."""
        return super().get_queryset(request).filter(
            rule__in=rules_visible_to(request.user).values("pk"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="results")
    def results_short(self, obj):
        """Each destination's result, cut."""
        return Truncator("; ".join(f"{k}: {v}" for k, v in obj.results.items())).chars(120)

