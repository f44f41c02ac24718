"""Migrated database templates: migrate once, then copy the result for every new installation.

`migrate` takes seconds (more on PostgreSQL) and used to run for every installation. The first
installation of a kind (SQLite, or one shared PostgreSQL server) with a given set of extra apps
is migrated as before and its fresh database kept as a template; later ones start from a copy
(a file copy, or PostgreSQL's `CREATE DATABASE ... TEMPLATE`). They still run `migrate`, which
then applies nothing, so a copy that lacked a migration would be caught up, never used as is.
"""

import atexit
import shutil
import tempfile
from pathlib import Path


class MigratedTemplates:
    """The templates made so far, keyed by database kind, server and TAILBOARD_EXTRA_APPS."""

    def __init__(self):
        self.sqlite_files = {}
        self.folder = None

    def _usable(self, harness):
        """Tell whether this installation's database may come from (or become) a template."""
        if not harness.made_database:
            return False
        return harness.database == "sqlite" or (harness.postgres and not harness.own_postgres)

    @staticmethod
    def _apps(harness):
        """The extra apps of the installation (they add tables)."""
        return harness.env.get("TAILBOARD_EXTRA_APPS", "")

    def restore(self, harness):
        """Replace the installation's empty database with a copy of its template; tell if done."""
        if not self._usable(harness):
            return False
        if harness.database == "sqlite":
            template = self.sqlite_files.get(self._apps(harness))
            if template is None:
                return False
            shutil.copyfile(template, harness.sqlite_path)
            return True
        template = harness.postgres.templates.get(self._apps(harness))
        if template is None:
            return False
        harness.postgres.recreate_database(harness.database_url, template=template)
        return True

    def save(self, harness):
        """Keep the installation's freshly migrated database as the template of its kind."""
        if not self._usable(harness):
            return
        if harness.database == "sqlite":
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="tailboard-templates-"))
                atexit.register(shutil.rmtree, self.folder, True)
            target = self.folder / f"migrated-{len(self.sqlite_files)}.sqlite3"
            shutil.copyfile(harness.sqlite_path, target)
            self.sqlite_files[self._apps(harness)] = target
            return
        server = harness.postgres
        name = f"template_{len(server.templates)}"
        server.copy_database(harness.database_url, name)
        server.templates[self._apps(harness)] = name


templates = MigratedTemplates()
