"""Container sources: validation of the two layouts and `sources add-container`."""

import json
import os

import pytest
from django.core.exceptions import ValidationError

from containers.layout import CriLayout, DockerLayout
from containers.models import ContainerSource
from tests.unit.test_sources_cli import new_id, sources

pytestmark = pytest.mark.django_db


def test_add_container_cri_prints_the_id_alone_on_the_last_line_with_defaults():
    out, _ = sources("add-container", "shop", "--namespace", "shop", "--pod", "web-*",
                     "--group", "ops")
    source = ContainerSource.objects.get(pk=new_id(out))
    assert (source.pods_dir, source.namespace, source.pod, source.container, source.docker_dir,
            source.queue) == ("/var/log/pods", "shop", "web-*", "*", "", "tailf")
    assert [group.name for group in source.groups.all()] == ["ops"]


def test_add_container_docker_takes_the_name_glob(settings, tmp_path):
    settings.LOG_ROOTS = ["/var/log", str(tmp_path)]
    out, _ = sources("add-container", "web", "--docker-dir", str(tmp_path), "--name", "web-*",
                     "--queue", "host-a")
    source = ContainerSource.objects.get(pk=new_id(out))
    assert (source.docker_dir, source.docker_name, source.pods_dir, source.queue) == (
        str(tmp_path), "web-*", "", "host-a")
    listed = json.loads(sources("list", "--json")[0])
    assert {"kind": "container", "name": "web", "docker_name": "web-*"}.items() \
        <= listed[0].items()


@pytest.mark.parametrize("args, says", [
    (("--namespace", "shop"), "Give a namespace and a pod"),
    (("--namespace", "shop", "--pod", "web", "--docker-dir", "/var/log/d", "--name", "x"),
     "not both"),
    (("--namespace", "shop", "--pod", "../x"), "no '/'"),
    (("--namespace", "shop", "--pod", "web", "--container", "a/b"), "no '/'"),
    (("--namespace", "sh*", "--pod", "web"), "one namespace"),
    (("--docker-dir", "/var/log/d", "--name", "a/b"), "no '/'"),
    (("--namespace", "shop", "--pod", "web", "--pods-dir", "/etc/pods"), "not under LOG_ROOTS"),
    (("--name", "web"), "not under LOG_ROOTS"),  # /var/lib/docker/containers by default
    (("--namespace", "shop", "--pod", "web", "--pods-dir", "/var/log/../etc"), "normalised"),
])
def test_add_container_refuses_a_bad_layout(args, says):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Invalid container source") as caught:
        sources("add-container", "bad", *args)
    assert says in str(caught.value)
    assert not ContainerSource.objects.exists()


def test_a_pods_dir_linked_outside_the_roots_is_refused(settings, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/etc", root / "pods")
    settings.LOG_ROOTS = [str(root)]
    source = ContainerSource(name="x", pods_dir=str(root / "pods"), namespace="a", pod="b")
    with pytest.raises(ValidationError, match="resolves to /etc"):
        source.full_clean()


def test_layouts_name_containers_and_ignore_foreign_files(tmp_path):
    pods = tmp_path / "pods"
    for path in ("shop_web-1_u1/app/0.log", "shop_web-1_u1/app/12.log", "shop_web-1_u1/app/x.log",
                 "shop_web-1_u1/app/0.log.20261206-100000", "shop_db_u2/pg/0.log",
                 "shop_web-2_u3_extra/app/0.log", "shop_web-3/app/0.log"):
        (pods / path).parent.mkdir(parents=True, exist_ok=True)
        (pods / path).write_text("")
    layout = CriLayout(str(pods), "shop", "web-*")
    assert sorted(layout.name_of(path) for path in layout.candidates()) == [
        "shop/web-1/app", "shop/web-1/app"]
    docker = tmp_path / "docker"
    (docker / ("a" * 64)).mkdir(parents=True)
    (docker / ("a" * 64) / "config.v2.json").write_text('{"Name": "/web"}')
    (docker / ("a" * 64) / f"{'a' * 64}-json.log").write_text("")
    (docker / ("b" * 64)).mkdir()
    (docker / ("b" * 64) / "config.v2.json").write_text("not json")
    (docker / ("b" * 64) / f"{'b' * 64}-json.log").write_text("")
    (docker / "not-an-id").mkdir()
    found = DockerLayout(str(docker), "*").candidates()
    assert [os.path.basename(path) for path in found] == [f"{'a' * 64}-json.log"]


def test_a_source_for_some_pods_lists_only_their_folders(tmp_path, monkeypatch):
    # A node holds many pods and a stream rescans every second: the listing must follow the
    # source's globs, not every pod of the namespace.
    import glob

    pods = tmp_path / "pods"
    for n in range(40):
        for container in ("app", "proxy"):
            (pods / f"shop_web-{n}_u{n}" / container).mkdir(parents=True)
            (pods / f"shop_web-{n}_u{n}" / container / "0.log").write_text("")
    (pods / "shop_web-1_x_u9" / "app").mkdir(parents=True)  # four parts: not a pod folder
    (pods / "shop_web-1_x_u9" / "app" / "0.log").write_text("")
    listed = []
    real = glob._listdir
    monkeypatch.setattr(glob, "_listdir", lambda folder, *rest: listed.append(folder)
                        or real(folder, *rest))
    layout = CriLayout(str(pods), "shop", "web-1*", "app")
    names = sorted(layout.name_of(path) for path in layout.candidates())
    assert names == ["shop/web-1/app"] + [f"shop/web-1{n}/app" for n in range(10)]
    assert not [folder for folder in listed if "proxy" in os.fsdecode(folder)]
    assert len(listed) <= 1 + 2 * 12  # the pods folder, then the matching pods' folders
    assert sorted(os.path.basename(folder) for folder in layout.folders()
                  if os.path.basename(os.path.dirname(folder)) == "pods") == sorted(
        f"shop_web-{n}_u{n}" for n in [1] + list(range(10, 20)))
