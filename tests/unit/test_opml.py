"""OPML: parsing without entity expansion, rendering, and `sources import-opml/export-opml`
adding everything or nothing."""

import io
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from feeds.models import FeedSource
from webapp import opml

ROOT = Path(__file__).resolve().parents[2]

MINIFLUX = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Miniflux</title></head>
  <body>
    <outline text="Ops">
      <outline text="Status" title="Status" type="rss"
               xmlUrl="https://status.example.com/history.atom" htmlUrl="https://status.example.com/"/>
      <outline text="Infra">
        <outline title="K8s releases" type="rss" xmlUrl="http://k8s.example.com/feed.xml"/>
      </outline>
    </outline>
    <outline text="Top" type="rss" xmlUrl="https://top.example.com/rss"/>
    <outline text="Empty category"/>
  </body>
</opml>
"""


def opml_doc(*outlines):
    """An OPML document whose body holds these outline snippets."""
    return ("<opml version='2.0'><head/><body>" + "".join(outlines) + "</body></opml>").encode()


def feed(name, url):
    """A feed outline snippet."""
    return f'<outline type="rss" text="{name}" xmlUrl="{url}"/>'


# --- parse ----------------------------------------------------------------------------------

def test_parse_reads_nested_categories_in_document_order():
    feeds = opml.parse(MINIFLUX)
    assert feeds == [
        opml.Feed("Status", "https://status.example.com/history.atom",
                  "https://status.example.com/", ("Ops",)),
        opml.Feed("K8s releases", "http://k8s.example.com/feed.xml", "", ("Ops", "Infra")),
        opml.Feed("Top", "https://top.example.com/rss", "", ()),
    ]


def test_parse_names_a_feed_without_text_or_title_after_its_url():
    assert opml.parse(opml_doc('<outline xmlUrl="https://a.example/x"/>'))[0].name == \
        "https://a.example/x"


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"this is not xml", "not XML"),
    (b"\x00\xff\xfe binary \x01", "not XML"),
    (b"<opml><body>", "not XML"),
    (b"<rss version='2.0'><channel/></rss>", "not <opml>"),
    (b"<opml version='2.0'><head/></opml>", "no <body>"),
    (b"<opml><body></body></opml>", "no feeds"),
    (b"<opml><body><outline text='only a category'/></body></opml>", "no feeds"),
])
def test_parse_refuses_what_is_not_usable_opml(data, message):
    with pytest.raises(opml.OpmlError, match=message):
        opml.parse(data)


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "/relative",
                                 "javascript:alert(1)", "http://", "https://[::1/x"])
def test_parse_refuses_an_outline_with_a_bad_url_naming_it(url):
    with pytest.raises(opml.OpmlError, match="feed 2 .'bad'.*not an absolute http"):
        opml.parse(opml_doc(feed("good", "https://ok.example/"), feed("bad", url)))


def test_parse_refuses_entity_expansion_billion_laughs():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b'<opml><body><outline text="&lol2;" xmlUrl="https://x.example/"/></body></opml>')
    with pytest.raises(opml.OpmlError, match="DTD or entities"):
        opml.parse(bomb)


def test_parse_refuses_external_entities(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<opml><body><outline text="&x;" xmlUrl="https://x.example/"/></body></opml>'
           ).encode()
    with pytest.raises(opml.OpmlError, match="DTD or entities"):
        opml.parse(xxe)


def test_parse_survives_very_deep_nesting():
    depth = 20000
    data = opml_doc("<outline text='c'>" * depth + feed("deep", "https://d.example/") +
                    "</outline>" * depth)
    try:
        feeds = opml.parse(data)
    except opml.OpmlError as exc:
        assert "not XML" in str(exc)
    else:
        assert feeds[0].name == "deep" and len(feeds[0].categories) == depth


def test_read_limited_stops_endless_input():
    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    with pytest.raises(opml.OpmlError, match="larger than"):
        opml.read_limited(io.BufferedReader(Endless()), limit=1024)


def test_duplicates_lists_each_repeated_name_once():
    feeds = [opml.Feed(n, "https://x.example/") for n in ["a", "b", "a", "c", "b", "a"]]
    assert opml.duplicates(feeds) == ["a", "b"]


def test_render_then_parse_round_trips_names_urls_and_categories():
    feeds = [opml.Feed("Status & <news>", "https://s.example/?a=1&b=2", "https://s.example/",
                       ("ops", "infra")),
             opml.Feed('Quote "q"', "http://q.example/", "", ("ops",)),
             opml.Feed("plain", "https://p.example/", "", ()),
             opml.Feed("中文 feed", "https://zh.example/", "", ())]
    assert opml.parse(opml.render(feeds)) == feeds


def test_render_drops_characters_xml_cannot_carry():
    document = opml.render([opml.Feed("bell\x07 nul\x00 ok", "https://x.example/")])
    assert opml.parse(document)[0].name == "bell nul ok"


# --- sources import-opml / export-opml ------------------------------------------------------

def sources(*args):
    """Run `sources ARGS`; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command("sources", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def opml_file(tmp_path):
    """Factory: write bytes to an .opml file; return its path."""
    def write(data, name="feeds.opml"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write


@pytest.mark.django_db
def test_import_opml_adds_every_feed_with_groups_queue_and_interval(opml_file):
    Group.objects.create(name="ops")
    out, err = sources("import-opml", opml_file(MINIFLUX), "--group", "ops", "--group", "sre",
                       "--queue", "feeds-eu", "--interval", "120")
    assert "Imported 3 feed sources." in out
    assert "Created group 'sre'." in err
    assert sorted(FeedSource.objects.values_list("name", "url", "queue", "interval")) == [
        ("K8s releases", "http://k8s.example.com/feed.xml", "feeds-eu", 120),
        ("Status", "https://status.example.com/history.atom", "feeds-eu", 120),
        ("Top", "https://top.example.com/rss", "feeds-eu", 120)]
    for source in FeedSource.objects.all():
        assert sorted(g.name for g in source.groups.all()) == ["ops", "sre"]


@pytest.mark.django_db
def test_import_opml_never_grants_access_from_categories(opml_file):
    sources("import-opml", opml_file(MINIFLUX))
    assert not Group.objects.filter(name__in=["Ops", "Infra"]).exists()
    assert all(not s.groups.exists() for s in FeedSource.objects.all())
    assert set(FeedSource.objects.values_list("queue", "interval")) == {("feeds", 60)}


@pytest.mark.django_db
@pytest.mark.parametrize("data,args,message", [
    (b"not xml at all", (), "not XML"),
    (b"<opml version='2.0'><head/></opml>", (), "no <body>"),
    (opml_doc(feed("ok", "https://ok.example/"), feed("bad", "gopher://x.example/")), (),
     "'bad'.*not an absolute http"),
    (opml_doc(feed("twice", "https://a.example/"), feed("once", "https://b.example/"),
              feed("twice", "https://c.example/")), (), "duplicate names.*'twice'"),
    (opml_doc(feed("ok", "https://ok.example/"), feed("x" * 101, "https://l.example/")), (),
     "feed 2.*name"),
    (MINIFLUX, ("--interval", "4"), "interval"),
    (MINIFLUX, ("--queue", "bad queue!"), "queue"),
    (MINIFLUX, ("--group", "ok", "--group", "x" * 200), "invalid group"),
])
def test_import_opml_refuses_bad_input_and_adds_nothing(opml_file, data, args, message):
    with pytest.raises(CommandError, match=f"(?s)Nothing imported.*{message}"):
        sources("import-opml", opml_file(data), *args)
    assert not FeedSource.objects.exists()
    assert not Group.objects.exists()


@pytest.mark.django_db
def test_import_opml_reports_every_problem_of_a_file_at_once_and_adds_nothing(opml_file):
    sources("add-feed", "Existing", "https://present.example/feed")
    sources("add-feed", "Top", "https://top.example/feed")
    data = opml_doc(feed("ok", "https://ok.example/"),
                    feed("bad scheme", "ftp://x.example/feed"),
                    feed("twice", "https://a.example/"),
                    feed("twice", "https://b.example/"),
                    feed("Top", "https://another.example/"),
                    feed("renamed", "https://present.example/feed"),
                    feed("copy", "https://ok.example/"))
    with pytest.raises(CommandError) as raised:
        sources("import-opml", opml_file(data), "--interval", "4")
    message = str(raised.value)
    lines = message.splitlines()
    assert lines[0].startswith("Nothing imported: 6 problems in ")
    assert "feed 2 ('bad scheme'): xmlUrl 'ftp://x.example/feed' is not an absolute http" \
        in message
    assert "duplicate names in the file: 'twice'" in message
    assert "sources with these names exist already: 'Top'" in message
    assert "'renamed': https://present.example/feed is already the source 'Existing'" in message
    assert "'copy': https://ok.example/ is already the feed in the file 'ok'" in message
    assert "option interval:" in message and message.count("interval") == 1
    assert sorted(FeedSource.objects.values_list("name", flat=True)) == ["Existing", "Top"]


@pytest.mark.django_db
def test_import_opml_refuses_names_that_clash_with_existing_sources(opml_file):
    sources("add-feed", "Top", "https://old.example/")
    with pytest.raises(CommandError, match="exist already: 'Top'"):
        sources("import-opml", opml_file(MINIFLUX))
    assert list(FeedSource.objects.values_list("name", flat=True)) == ["Top"]


@pytest.mark.django_db
def test_import_opml_rolls_back_when_a_save_fails_midway(opml_file, monkeypatch):
    from django.db import IntegrityError

    saved = []
    original = FeedSource.save

    def save_then_fail(self, *args, **kwargs):
        if saved:
            raise IntegrityError("UNIQUE constraint failed: name")
        original(self, *args, **kwargs)
        saved.append(self.name)

    monkeypatch.setattr(FeedSource, "save", save_then_fail)
    with pytest.raises(CommandError, match="Nothing imported: a name was taken meanwhile"):
        sources("import-opml", opml_file(MINIFLUX), "--group", "new")
    assert saved and not FeedSource.objects.exists()
    assert not Group.objects.filter(name="new").exists()


@pytest.mark.django_db
def test_import_opml_reports_unreadable_files_clearly(tmp_path):
    with pytest.raises(CommandError, match="cannot read .*No such file"):
        sources("import-opml", str(tmp_path / "missing.opml"))
    with pytest.raises(CommandError, match="cannot read .*directory"):
        sources("import-opml", str(tmp_path))


@pytest.mark.django_db
def test_import_opml_refuses_an_endless_device():
    with pytest.raises(CommandError, match="larger than"):
        sources("import-opml", "/dev/zero")


@pytest.mark.django_db
def test_export_opml_writes_feeds_under_group_categories_and_reimports(tmp_path):
    ops = Group.objects.create(name="ops")
    sre = Group.objects.create(name="sre")
    a = FeedSource.objects.create(name="a & b", url="https://a.example/?x=1&y=2")
    a.groups.set([sre, ops])
    FeedSource.objects.create(name="plain", url="http://p.example/feed")
    out, _ = sources("export-opml")
    feeds = opml.parse(out.encode())
    assert feeds == [opml.Feed("a & b", "https://a.example/?x=1&y=2", "", ("ops, sre",)),
                     opml.Feed("plain", "http://p.example/feed", "", ())]
    target = tmp_path / "out.opml"
    _, err = sources("export-opml", str(target))
    assert "Exported 2 feed sources" in err
    assert target.read_bytes() == out.encode()
    FeedSource.objects.all().delete()
    sources("import-opml", str(target))
    assert sorted(FeedSource.objects.values_list("name", "url")) == [
        ("a & b", "https://a.example/?x=1&y=2"), ("plain", "http://p.example/feed")]


@pytest.mark.django_db
def test_export_opml_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    FeedSource.objects.create(name="f", url="https://f.example/")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "out.opml"
    link.symlink_to(victim)
    sources("export-opml", str(link))
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and opml.parse(link.read_bytes())[0].name == "f"


@pytest.mark.django_db
def test_export_opml_into_an_unwritable_folder_says_so(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o755)
    os.chmod(tmp_path, 0o755)
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='webapp.settings'; "
            "django.setup(); from webapp.management.commands.sources import Command; "
            "from django.core.management import CommandError\n"
            "try:\n"
            f"    Command().write_atomically({str(folder / 'x.opml')!r}, b'data')\n"
            "except CommandError as e:\n    print('ERR', e)\n")
    try:
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("setpriv is not available")
    assert "ERR cannot write to" in result.stdout, result.stderr
    assert list(folder.iterdir()) == []
