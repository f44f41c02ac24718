"""`manage.py demo`: keep a demo log growing and serve a demo feed."""

from django.core.management.base import BaseCommand

from webapp import demo


class Command(BaseCommand):
    """Run the demo log writer and feed server until interrupted."""

    help = "Append lines to a demo log and serve a demo RSS feed on 127.0.0.1."

    def add_arguments(self, parser):
        """Declare --log and --feed-port."""
        parser.add_argument("--log", required=True, help="absolute path of the demo log")
        parser.add_argument("--feed-port", type=int, required=True)

    def handle(self, *args, **options):
        """Run until Ctrl-C."""
        try:
            demo.run(options["log"], options["feed_port"])
        except KeyboardInterrupt:
            pass
