"""Container sources: the logs a container runtime writes on the hosts of one Celery queue."""


from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from containers.layout import CriLayout, DockerLayout, check_glob
from tailf.models import validate_absolute_path
from tailf.roots import OutsideRoots, check_under_roots
from webapp.models import Source, validate_queue


class ContainerSource(Source):
    """Either a Kubernetes/CRI pods folder (namespace, pod glob, container glob) or a Docker
    json-file containers folder (container name glob): exactly one of the two layouts."""

    pods_dir = models.CharField(
        max_length=4096, blank=True, default="/var/log/pods",
        validators=[validate_absolute_path],
        help_text="Kubernetes/CRI: the pods log folder (under LOG_ROOTS). Empty for Docker.")
    namespace = models.CharField(max_length=253, blank=True, help_text="Kubernetes namespace.")
    pod = models.CharField(max_length=253, blank=True, help_text="Pod name or glob (web-*).")
    container = models.CharField(max_length=253, blank=True, default="*",
                                 help_text="Container name or glob (default: every one).")
    docker_dir = models.CharField(
        max_length=4096, blank=True, validators=[validate_absolute_path],
        help_text="Docker json-file: the containers folder, usually "
                  "/var/lib/docker/containers (under LOG_ROOTS). Empty for Kubernetes/CRI.")
    docker_name = models.CharField(
        max_length=253, blank=True, verbose_name="container name glob",
        help_text="Docker: glob over the container's name (its config.v2.json Name).")
    queue = models.CharField(max_length=100, default="tailf", validators=[validate_queue],
                             help_text="Celery queue whose workers run on the containers' host.")

    def clean(self):
        """Exactly one layout, its folder under LOG_ROOTS, its globs names (no '/')."""
        super().clean()
        if self.docker_dir or self.docker_name:
            if self.namespace or self.pod:
                raise ValidationError("Give either a pods folder, namespace and pod "
                                      "(Kubernetes/CRI) or a Docker folder and name, not both.")
            self.pods_dir, self.container = "", ""
            self.docker_dir = self.docker_dir or "/var/lib/docker/containers"
            self._check(lambda: DockerLayout(self.docker_dir, self.docker_name), "docker_name")
            self._check_root("docker_dir", self.docker_dir)
            return
        if not (self.namespace and self.pod):
            raise ValidationError("Give a namespace and a pod (Kubernetes/CRI), or a Docker "
                                  "folder and a container name.")
        self.pods_dir = self.pods_dir or "/var/log/pods"
        self.container = self.container or "*"
        for field in ("namespace", "pod", "container"):
            self._check(lambda field=field: check_glob(getattr(self, field), field), field)
        self._check(lambda: CriLayout(self.pods_dir, self.namespace, self.pod, self.container),
                    "namespace")
        self._check_root("pods_dir", self.pods_dir)

    def _check(self, build, field):
        try:
            build()
        except ValueError as exc:
            raise ValidationError({field: str(exc)}) from None

    def _check_root(self, field, folder):
        if not folder:
            return
        try:
            check_under_roots(folder, settings.LOG_ROOTS)
        except OutsideRoots as exc:
            raise ValidationError({field: str(exc)}) from None

    @property
    def is_docker(self):
        """Whether the source is a Docker json-file folder."""
        return bool(self.docker_dir)

    def describe(self):
        """What the source follows, for people."""
        if self.is_docker:
            return f"docker {self.docker_dir} {self.docker_name}"
        return f"{self.pods_dir} {self.namespace}/{self.pod}/{self.container or '*'}"

    class Meta(Source.Meta):
        verbose_name = "container source"
