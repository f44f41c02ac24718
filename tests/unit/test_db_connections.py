"""An HTTP request closes its database connection as it ends, whatever CONN_MAX_AGE says;
outside requests (stream consumers, tasks) the connection is kept for reuse."""

import time

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection, connections


@pytest.mark.django_db(transaction=True)
def test_a_request_closes_its_connection_and_other_work_keeps_it(monkeypatch):
    assert connection.settings_dict["CONN_MAX_AGE"] > 0
    close_old_connections()
    connection.ensure_connection()
    # SQLite in memory ignores close(), so a connection opened by tests more than
    # CONN_MAX_AGE ago stays open and obsolete, and Django's own handler would close it too.
    connection.close_at = time.monotonic() + connection.settings_dict["CONN_MAX_AGE"]
    connection.errors_occurred = False  # an earlier test's error would make it obsolete too
    kept = connection.connection
    close_old_connections()  # what a consumer's database call does around itself
    assert connection.connection is kept
    closed = []
    # The test database is SQLite in memory, whose close Django ignores: record the call.
    monkeypatch.setattr(type(connections["default"]), "close",
                        lambda self: closed.append(self.alias))
    request_finished.send(sender=None)
    assert closed == ["default"]
