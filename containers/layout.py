"""Where container logs lie on a host: the CRI pods folder and Docker's containers folder (pure).

CRI (kubelet): `<pods_dir>/<namespace>_<pod>_<uid>/<container>/<restart>.log`, rotated as
`<restart>.log.<YYYYMMDD-hhmmss>[.gz]`. Docker json-file:
`<docker_dir>/<id>/<id>-json.log`, rotated as `<id>-json.log.<N>[.gz]`, the container's name in
`<docker_dir>/<id>/config.v2.json` (`"Name": "/web"`). A layout lists the live files that match
a source, names the container of a file, and lists a file's rotated siblings.
"""

import fnmatch
import glob
import json
import os
import re

from tailf.roots import OutsideRoots, open_confined
from tailf.rotations import rotated_siblings

RESTART_LOG = re.compile(r"[0-9]{1,9}\.log")
CRI_ROTATED = r"\.([0-9]{8}-[0-9]{6})(\.gz)?"
DOCKER_ID = re.compile(r"[0-9a-f]{12,128}")
CONFIG_LIMIT = 4 * 1024 * 1024
GLOB_MAGIC = re.compile(r"[*?[]")


def check_glob(value, what):
    """Raise ValueError unless `value` is a sane name glob (no path separator, NUL, dots)."""
    if not value or "/" in value or "\x00" in value or value in (".", "..") \
            or len(value) > 253:
        raise ValueError(f"{what} must be a name or glob of one (no '/'), not {value!r}")


class CriLayout:
    """Kubernetes / CRI: pods folder, namespace, pod glob, container glob."""

    kind = "cri"

    def __init__(self, pods_dir, namespace, pod, container="*"):
        for value, what in ((namespace, "namespace"), (pod, "pod"), (container, "container")):
            check_glob(value, what)
        if GLOB_MAGIC.search(namespace) or "_" in namespace:
            raise ValueError(f"namespace must be one namespace's name, not {namespace!r}")
        self.root = pods_dir
        self.namespace = namespace
        self.pod = pod
        self.container = container

    def describe(self):
        """What the source follows, for people."""
        return f"{self.root}: {self.namespace}/{self.pod}/{self.container}"

    def candidates(self):
        """The live restart logs of the matching containers.

        The pod and container globs narrow the listing itself (a node may hold hundreds of
        pods; a stream rescans every second); `name_of` then checks each path exactly.
        """
        base = os.path.join(self._pod_dirs(), self.container, "*.log")
        return [path for path in glob.glob(base) if self.name_of(path) is not None]

    def _pod_dirs(self):
        """The glob of the matching pod folders (`namespace_pod_uid`)."""
        return os.path.join(glob.escape(self.root), f"{glob.escape(self.namespace)}_{self.pod}_*")

    def folders(self):
        """The pods folder, the matching pod folders and their container folders."""
        found = {self.root} if os.path.isdir(self.root) else set()
        for pod_dir in glob.glob(self._pod_dirs()):
            if self._pod_of(os.path.basename(pod_dir)) is None:
                continue
            found.add(pod_dir)
            for entry in _subdirs(pod_dir):
                if fnmatch.fnmatchcase(entry, self.container):
                    found.add(os.path.join(pod_dir, entry))
        return found

    def _pod_of(self, folder):
        parts = folder.split("_")
        if len(parts) != 3 or parts[0] != self.namespace or not parts[2] \
                or not fnmatch.fnmatchcase(parts[1], self.pod):
            return None
        return parts[1]

    def name_of(self, path):
        """`namespace/pod/container` of a live log path that matches, else None."""
        prefix = os.path.join(self.root, "")
        rest = (path[len(prefix):] if path.startswith(prefix)
                else os.path.relpath(path, self.root)).split(os.sep)
        if len(rest) != 3 or not RESTART_LOG.fullmatch(rest[2]):
            return None
        pod = self._pod_of(rest[0])
        if pod is None or not fnmatch.fnmatchcase(rest[1], self.container):
            return None
        return f"{self.namespace}/{pod}/{rest[1]}"

    def restart_of(self, path):
        """The restart number of a live log path."""
        return int(os.path.basename(path).split(".")[0])

    def siblings(self, path):
        """The rotated files of a live log, oldest first, then the live path."""
        folder, base = os.path.split(path)
        rule = re.compile(re.escape(base) + CRI_ROTATED)
        found = {}
        for entry in _entries(folder):
            hit = rule.fullmatch(entry.name)
            if hit and _regular(entry):
                key = hit.group(1)
                if key not in found or found[key].endswith(".gz"):
                    found[key] = entry.path
        return [found[key] for key in sorted(found)] + [path]


class DockerLayout:
    """Docker json-file: containers folder, glob over the containers' names."""

    kind = "docker"

    def __init__(self, docker_dir, name, roots=()):
        check_glob(name, "name")
        self.root = docker_dir
        self.name = name
        self.roots = roots
        self.names = {}

    def describe(self):
        """What the source follows, for people."""
        return f"{self.root}: {self.name}"

    def candidates(self):
        """The live json logs of the containers whose name matches."""
        found = []
        for entry in _subdirs(self.root):
            if not DOCKER_ID.fullmatch(entry):
                continue
            name = self.container_name(entry)
            if name is not None and fnmatch.fnmatchcase(name, self.name):
                found.append(os.path.join(self.root, entry, f"{entry}-json.log"))
        return found

    def folders(self):
        """The containers folder and each matching container's folder."""
        found = {self.root} if os.path.isdir(self.root) else set()
        return found | {os.path.dirname(path) for path in self.candidates()}

    def container_name(self, ident):
        """The name in a container's config.v2.json (without the leading "/"), or None."""
        path = os.path.join(self.root, ident, "config.v2.json")
        try:
            info = os.stat(path)
        except OSError:
            return None
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        known = self.names.get(ident)
        if known is not None and known[0] == key:
            return known[1]
        name = read_name(path, self.roots)
        self.names[ident] = (key, name)
        return name

    def name_of(self, path):
        """The container's name for one of its live logs, else None."""
        ident = os.path.basename(os.path.dirname(path))
        if os.path.basename(path) != f"{ident}-json.log":
            return None
        return self.container_name(ident)

    def restart_of(self, path):
        """Docker keeps one log per container across restarts."""
        return 0

    def siblings(self, path):
        """The rotated files (`-json.log.N[.gz]`), oldest first, then the live path."""
        return [name for name in rotated_siblings(path)
                if name == path or re.fullmatch(r".*\.[0-9]{1,9}(\.gz)?", name)]


def read_name(path, roots):
    """Return the `Name` of a config.v2.json (leading "/" removed), or None if unreadable."""
    try:
        fd = open_confined(path, roots) if roots else os.open(path, os.O_RDONLY)
    except (OSError, OutsideRoots):
        return None
    try:
        data = os.read(fd, CONFIG_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > CONFIG_LIMIT:
        return None
    try:
        config = json.loads(data)
    except ValueError:
        return None
    name = config.get("Name") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name.strip("/") or "\n" in name:
        return None
    return name.lstrip("/")


def _entries(folder):
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


def _subdirs(folder):
    return sorted(entry.name for entry in _entries(folder) if entry.is_dir(follow_symlinks=False))


def _regular(entry):
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return False


def layout_of(source, roots=()):
    """Return the layout of a ContainerSource."""
    if source.docker_dir:
        return DockerLayout(source.docker_dir, source.docker_name, roots)
    return CriLayout(source.pods_dir, source.namespace, source.pod, source.container or "*")
