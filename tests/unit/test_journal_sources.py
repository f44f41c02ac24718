"""Journal sources: their fields' checks, `sources add-journal`, the admin and the picker text."""

import os

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError

from journal.models import JournalSource
from journal.options import parse
from journal.stream import describe
from tests.unit.test_sources_cli import new_id, sources
from webapp.streams.options import OptionError

pytestmark = pytest.mark.django_db

CURSOR = ("s=ae219e486a72473bb040039aa48be951;i=9;b=0123456789abcdef0123456789abcdef;"
          "m=64549df81a280;t=64549df81a280;x=3a2379bb03a1a21a")


def test_add_journal_takes_repeated_units_and_identifiers_and_prints_the_id_last():
    out, err = sources("add-journal", "web", "--unit", "nginx.service", "--unit",
                       "php-fpm@8.2.service", "--identifier", "sshd", "--priority", "4",
                       "--group", "ops")
    source = JournalSource.objects.get(pk=new_id(out))
    assert source.units == ["nginx.service", "php-fpm@8.2.service"]
    assert source.identifiers == ["sshd"]
    assert (source.directory, source.priority, source.queue) == ("/var/log/journal", 4, "tailf")
    assert [g.name for g in source.groups.all()] == ["ops"]
    assert "Created group 'ops'" in err


def test_add_journal_without_filters_keeps_the_defaults():
    out, _ = sources("add-journal", "all", "--directory", "/var/log/journal/remote",
                     "--queue", "host-a")
    source = JournalSource.objects.get(pk=new_id(out))
    assert (source.units, source.identifiers, source.priority) == ([], [], 7)
    assert (source.directory, source.queue) == ("/var/log/journal/remote", "host-a")


@pytest.mark.parametrize("args, field", [
    (["--directory", "/etc"], "directory"),
    (["--directory", "/var/log/../../etc"], "directory"),
    (["--unit", "bad unit;rm"], "units"),
    (["--priority", "8"], "priority"),
    (["--identifier", "two\nlines"], "identifiers"),
])
def test_add_journal_refuses_bad_fields(args, field):
    with pytest.raises(CommandError, match=field):
        sources("add-journal", "bad", *args)
    assert not JournalSource.objects.exists()


def test_a_folder_that_resolves_outside_the_roots_is_refused(tmp_path, settings):
    settings.LOG_ROOTS = [str(tmp_path / "logs")]
    os.mkdir(tmp_path / "logs")
    os.symlink("/etc", tmp_path / "logs" / "journal")
    source = JournalSource(name="escape", directory=str(tmp_path / "logs" / "journal"))
    with pytest.raises(ValidationError, match="resolves to /etc"):
        source.full_clean()


def test_list_json_shows_the_journal_fields():
    sources("add-journal", "web", "--unit", "nginx.service")
    import json

    out, _ = sources("list", "--json")
    row = next(row for row in json.loads(out) if row["kind"] == "journal")
    assert row["units"] == ["nginx.service"] and row["priority"] == 7


def test_the_picker_text_names_the_units_and_identifiers():
    source = JournalSource(name="web", units=["nginx.service", "php.service"],
                           identifiers=["sshd"], priority=3)
    assert describe(source) == ("/var/log/journal · nginx.service, php.service · sshd · "
                                "priority ≤ 3")


def test_the_admin_lists_and_searches_journal_sources(client):
    admin = User.objects.create_superuser("root", password="pw")
    JournalSource.objects.create(name="web-journal", units=["nginx.service"])
    client.force_login(admin)
    response = client.get("/admin/journal/journalsource/?q=web")
    assert response.status_code == 200 and b"web-journal" in response.content
    assert client.get("/admin/journal/journalsource/add/").status_code == 200


def test_options_take_a_cursor_and_refuse_anything_else():
    assert parse({"after": [CURSOR]})["after"] == CURSOR
    assert parse({"lines": ["5"]}) == {"lines": 5, "grep": ""}
    for bad in ("s=1;i=2'", "x" * 10, "s=" + "a" * 400, "s=1\ni=2", "s=1;;i=2", "S=1"):
        with pytest.raises(OptionError, match="after must be a journal cursor"):
            parse({"after": [bad]})
    with pytest.raises(OptionError):
        parse({"grep": ["("]})
