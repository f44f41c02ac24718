"""Alert rules over any source kind, where their alerts go, and the record of every firing."""

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from alerts import destinations
from webapp.streams import kinds
from webapp.streams.options import OptionError

MAX_SAMPLES = 5
MAX_SAMPLE_CHARS = 1000
QUEUE_SUFFIX = ".alerts"


def validate_apprise_url(value):
    """Refuse a URL Apprise cannot read (the message never repeats the URL)."""
    try:
        destinations.plugin_for(value)
    except destinations.BadDestination as exc:
        raise ValidationError(str(exc)) from None


def validate_pattern(value):
    """Refuse a pattern RE2 cannot compile (the log kind's own rule for `grep`)."""
    from tailf.options import compile_grep

    try:
        compile_grep(value, "pattern")
    except OptionError as exc:
        raise ValidationError(str(exc)) from None


class AlertDestination(models.Model):
    """Where alerts go: one Apprise URL (Slack, Teams, e-mail, ntfy, a JSON webhook, ...).

    Managed by superusers only; the URL holds secrets and is shown redacted everywhere.
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField("Apprise URL", max_length=2000, validators=[validate_apprise_url],
                           help_text="An Apprise URL, e.g. json://hooks.example/alert, "
                                     "mailtos://user:password@mail.example?to=ops@example, "
                                     "slack://TokenA/TokenB/TokenC/#channel. Shown redacted "
                                     "once saved.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def redacted_url(self):
        """The URL with its secrets hidden."""
        return destinations.redacted(self.url)


class AlertRule(models.Model):
    """A pattern over the stream a viewer of one source would see, and when to alert on it.

    The source is any registered kind: `kind` (its slug) and `source_id`. The rule fires
    when `threshold` lines match within `window` seconds, then stays quiet for `cooldown`
    seconds (counting what it suppressed); with `resolved_message`, a thresholded rule that
    goes quiet again (fewer than `threshold` matches in a window after it fired) says so.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, help_text="The source kind's slug (log, feed, ...).")
    source_id = models.PositiveBigIntegerField()
    pattern = models.CharField(max_length=500, validators=[validate_pattern],
                               help_text="An RE2 regular expression searched in each line.")
    threshold = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Matches within the window that fire the rule.")
    window = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)],
        help_text="Seconds.")
    cooldown = models.PositiveIntegerField(
        default=300, validators=[MaxValueValidator(7 * 86_400)],
        help_text="Seconds after a firing during which matches are only counted.")
    resolved_message = models.CharField(
        max_length=500, blank=True,
        help_text="Sent when the rule goes quiet after firing (empty: nothing is sent).")
    destinations = models.ManyToManyField(AlertDestination, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)
    groups = models.ManyToManyField(
        Group, blank=True, related_name="+",
        help_text="If any, only their members (among those who may see the source) see "
                  "this rule's firings.")
    state = models.CharField(max_length=300, blank=True, editable=False,
                             help_text="What the rule's task reported last.")
    state_changed = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def kind_entry(self):
        """The registered kind of the source, or raise LookupError."""
        return kinds.get(self.kind)

    def load_source(self):
        """Return the source object, or None when it is gone or its kind is unknown."""
        try:
            model = self.kind_entry.source_model
        except LookupError:
            return None
        return model.objects.filter(pk=self.source_id).first()

    @property
    def source_label(self):
        """`kind:name` of the source (or its id when it is gone)."""
        source = self.load_source()
        return f"{self.kind}:{source.name if source else f'#{self.source_id} (gone)'}"

    def queue(self, source=None):
        """The queue of the rule's task: the source's queue + `.alerts`."""
        source = source or self.load_source()
        base = getattr(source, "queue", "") or self.kind_entry.default_queue or "tailf"
        return base + QUEUE_SUFFIX

    def clean(self):
        """Check the source against the kind registry and the pattern with RE2."""
        super().clean()
        try:
            self.kind_entry  # noqa: B018 - the lookup itself is the check
        except LookupError as exc:
            raise ValidationError({"kind": str(exc)}) from None
        if self.source_id is not None and self.load_source() is None:
            raise ValidationError({"source_id": f"no {self.kind} source with id {self.source_id}"})
        if self.threshold == 1 and self.resolved_message:
            raise ValidationError({"resolved_message": "a resolved message needs a threshold "
                                                       "above 1 (a rule that fires on every "
                                                       "match never goes quiet)"})


class AlertEvent(models.Model):
    """One firing (or resolution, or test) of a rule and each destination's result."""

    FIRING = "firing"
    RESOLVED = "resolved"
    TEST = "test"
    KINDS = [(FIRING, "firing"), (RESOLVED, "resolved"), (TEST, "test")]

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(default=timezone.now, db_index=True)
    event = models.CharField(max_length=10, choices=KINDS, default=FIRING)
    matches = models.PositiveBigIntegerField(default=0, help_text="Matches within the window.")
    suppressed = models.PositiveBigIntegerField(
        default=0, help_text="Matches during the cooldown before this event, not alerted.")
    samples = models.JSONField(default=list, blank=True,
                               help_text=f"Up to {MAX_SAMPLES} matching lines.")
    results = models.JSONField(default=dict, blank=True,
                               help_text="Each destination's result: sent, or why not.")
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-time", "-pk"]

    def __str__(self):
        return f"{self.rule} {self.event} at {self.time:%Y-%m-%d %H:%M:%S}"


def clip_samples(lines):
    """Return at most MAX_SAMPLES lines, each cut to MAX_SAMPLE_CHARS characters."""
    return [str(line)[:MAX_SAMPLE_CHARS] for line in list(lines)[-MAX_SAMPLES:]]
