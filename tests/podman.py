"""A real container runtime for tests: Debian's podman + runc, in a throw-away state folder.

Containers log in the CRI format through conmon (`--log-driver k8s-file`), to any path the
test names, the same writer CRI-O uses on Kubernetes nodes. The image is made with no
registry: a root filesystem holding the statically linked busybox, imported into the
temporary storage (`--root`/`--runroot`/`--tmpdir`, vfs driver, cgroupfs), so nothing
touches the host's podman state. Needs root, podman, runc and busybox-static.
"""

import os
import shutil
import subprocess
import tempfile

BUSYBOX = "/bin/busybox"
RUNC = "/usr/sbin/runc"
APPLETS = ("sh", "echo", "sleep", "cat", "seq", "printf", "head", "tr", "yes", "true")
IMAGE = "localhost/tailboard-test-bb"


def missing():
    """Why podman cannot run containers here ("" when it can)."""
    if os.geteuid() != 0:
        return "podman tests run as root"
    for need, package in (("podman", "podman"), (RUNC, "runc"), (BUSYBOX, "busybox-static")):
        if not shutil.which(need):
            return f"{need} is missing (Debian package {package})"
    kind = subprocess.run(["file", "-b", BUSYBOX], capture_output=True, text=True).stdout \
        if shutil.which("file") else "statically linked"
    if "statically linked" not in kind:
        return f"{BUSYBOX} is not statically linked (install busybox-static)"
    return ""


class Podman:
    """podman with its own temporary state; `run()` starts a container logging to a path."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="tb-podman-")
        self.ids = []
        rootfs = os.path.join(self.home, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in APPLETS:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True)
        self.podman("import", "-", IMAGE, input=tar.stdout)

    def command(self, *args):
        """The podman command line with this instance's state folders."""
        return ["podman", "--root", os.path.join(self.home, "root"),
                "--runroot", os.path.join(self.home, "run"),
                "--tmpdir", os.path.join(self.home, "tmp"), "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--runtime", RUNC, "--events-backend", "file",
                *args]

    def podman(self, *args, input=None, timeout=60):
        """Run podman; return its stdout; raise with its stderr when it fails."""
        done = subprocess.run(self.command(*args), input=input, capture_output=True,
                              timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"podman {' '.join(args[:2])} failed: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode().strip()

    def run(self, log_path, script, detach=False):
        """Run `sh -c script` in a container whose output conmon writes (CRI) to log_path."""
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        args = ["run", "--network", "none", "--ulimit", "nofile=1024:1024",
                "--ulimit", "nproc=1024:1024", "--log-driver", "k8s-file",
                "--log-opt", f"path={log_path}"]
        args += ["-d"] if detach else ["--rm"]
        out = self.podman(*args, IMAGE, "sh", "-c", script)
        if detach:
            self.ids.append(out.splitlines()[-1])
            return self.ids[-1]
        return out

    def kill(self, ident):
        """Remove a container at once."""
        self.podman("rm", "-f", "-t", "0", ident)
        self.ids.remove(ident)

    def close(self):
        """Remove the containers and the state folder."""
        for ident in list(self.ids):
            try:
                self.kill(ident)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        try:
            self.podman("rm", "-a", "-f", "-t", "0")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        subprocess.run(["umount", "-R", "-l", os.path.join(self.home, "root")],
                       capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
