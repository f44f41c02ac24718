"""App config for log tailing: registers the `log` source kind."""

from django.apps import AppConfig


class TailfConfig(AppConfig):
    """Log sources, the tail engine and the tail stream."""

    name = "tailf"
    verbose_name = "Log tail"

    def ready(self):
        """Register the log kind with the stream lifecycle."""
        from tailf import options, stream
        from webapp.streams.kinds import Kind, register

        register(Kind(slug="log", label="Logs", url="tailf", model="tailf.LogSource",
                      run=stream.follow, parse_options=options.parse, pools=stream.pools,
                      describe=lambda source: source.path, task_name="tailf.tail_file",
                      default_queue="tailf", options_template="tailf/options.html",
                      resumable=True, fields=("path",),
                      location_fields=("path",),
                      add_argument=("path", "Absolute path under LOG_ROOTS (a glob may end it); "
                                            "the file need not exist yet."),
                      add_options=(("--rotate-wait", "rotate_wait", int,
                                    "Seconds a rotated file keeps being read "
                                    "(default: TAILF_ROTATE_WAIT)."),)))
