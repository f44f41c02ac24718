"""App config for the systemd journal: registers the `journal` source kind."""

from django.apps import AppConfig


class JournalConfig(AppConfig):
    """Journal sources, the journal reader and the journal stream."""

    name = "journal"
    verbose_name = "Systemd journal"

    def ready(self):
        """Register the journal kind with the stream lifecycle."""
        from journal import options, stream
        from webapp.streams.kinds import Kind, register
        from webapp.streams.text import register_messages

        register_messages(stream.MESSAGES)
        register(Kind(slug="journal", label="Journal", url="journal",
                      model="journal.JournalSource", run=stream.follow,
                      parse_options=options.parse, describe=stream.describe,
                      task_name="journal.follow_journal", default_queue="tailf",
                      options_template="journal/options.html",
                      fields=("directory", "units", "identifiers", "priority"),
                      add_options=(
                          ("--directory", "directory", str,
                           "Journal folder under LOG_ROOTS (default /var/log/journal)."),
                          ("--unit", "units", list,
                           "Systemd unit to show (repeatable; none: all)."),
                          ("--identifier", "identifiers", list,
                           "Syslog identifier to show (repeatable; none: all)."),
                          ("--priority", "priority", int,
                           "Show entries at this priority or more urgent (0..7, default 7)."),
                      )))
