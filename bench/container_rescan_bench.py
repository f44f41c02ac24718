"""What an idle container stream costs on a node with many pods: CPU per layout rescan.

Run: .venv/bin/python bench/container_rescan_bench.py [--pods N ...] [--rescans R]
A ContainerFollower over a Kubernetes/CRI pods folder of N pods (two containers each, empty
logs) rescans its layout once a second (new pods, restarts, pods gone); this forces R rescans
and prints the CPU time of one, for a source naming one pod, a pod glob matching about a tenth
of them, and every pod (followed up to TAILF_MAX_FILES, 64).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from containers.follow import ContainerFollower  # noqa: E402
from containers.layout import CriLayout  # noqa: E402


def pods_folder(count):
    """A temp folder holding `count` pods of namespace `shop`, two containers each."""
    root = tempfile.mkdtemp(prefix="tailboard-rescan-bench-")
    for n in range(count):
        for container in ("app", "sidecar"):
            folder = os.path.join(root, "pods", f"shop_web-{n}_uid{n}", container)
            os.makedirs(folder)
            open(os.path.join(folder, "0.log"), "w").close()
    return root


def rescan_ms(root, pod, rescans):
    """CPU milliseconds of one rescan of a follower for `pod` (and how many it follows)."""
    follower = ContainerFollower(CriLayout(os.path.join(root, "pods"), "shop", pod),
                                 backlog=0, roots=[root])
    follower.start()
    started = time.process_time()
    for _ in range(rescans):
        follower.files.scanned_at = float("-inf")  # due now, as it is once a second
        follower.poll()
    took = (time.process_time() - started) / rescans * 1000
    followed = len(follower.files.children)
    follower.close()
    return took, followed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[110, 1000])
    parser.add_argument("--rescans", type=int, default=20)
    args = parser.parse_args()
    print(f"{'pods':>5}  {'source pod':12}  {'followed':>8}  CPU per rescan")
    for count in args.pods:
        root = pods_folder(count)
        try:
            for pod in ("web-1", "web-1*", "*"):
                took, followed = rescan_ms(root, pod, args.rescans)
                print(f"{count:>5}  {pod:12}  {followed:>8}  {took:.1f} ms")
        finally:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
