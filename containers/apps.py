"""App config for container logs: registers the `container` source kind."""

from django.apps import AppConfig

MESSAGES = {
    "container_joined": "container {name} started logging; following it",
    "container_restarted": "container {name} restarted (restart {restart}); following its new log",
    "container_left": "container {name} is gone; no longer following it",
}


class ContainersConfig(AppConfig):
    """Container sources (Kubernetes/CRI and Docker json-file) and their stream."""

    name = "containers"
    verbose_name = "Containers"

    def ready(self):
        """Register the container kind and its notices with the stream lifecycle."""
        from containers import stream
        from tailf import options
        from tailf.stream import pools
        from webapp.streams import text
        from webapp.streams.kinds import Kind, register

        text.register_messages(MESSAGES)
        register(Kind(slug="container", label="Containers", url="container",
                      model="containers.ContainerSource", run=stream.follow,
                      parse_options=options.parse, pools=pools,
                      describe=lambda source: source.describe(),
                      task_name="containers.follow_containers", default_queue="tailf",
                      options_template="containers/options.html", resumable=True,
                      fields=("pods_dir", "namespace", "pod", "container", "docker_dir",
                              "docker_name"),
                      add_options=(
                          ("--pods-dir", "pods_dir", str,
                           "Kubernetes/CRI pods log folder (default /var/log/pods)."),
                          ("--namespace", "namespace", str, "Kubernetes namespace."),
                          ("--pod", "pod", str, "Pod name or glob."),
                          ("--container", "container", str,
                           "Container name or glob (default: every container of the pod)."),
                          ("--docker-dir", "docker_dir", str,
                           "Docker json-file containers folder "
                           "(usually /var/lib/docker/containers)."),
                          ("--name", "docker_name", str,
                           "Docker: glob over the container's name."))))
