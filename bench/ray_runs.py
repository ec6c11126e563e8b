"""What Ray buys and costs the queue of runs (classroom/queue.py), in one process.

    python bench/ray_runs.py            # both parts, a few minutes on 2 cores
    python bench/ray_runs.py --part nodes

``nodes``: four identical short runs on a local Ray cluster of two nodes of one CPU each
(``ray.cluster_utils.Cluster``) against the same four on one such node; the time ratio (target
<= 0.60), each from the first submit to the last run's end. ``cost``: one run of about 30 s through
Ray (an actor of one CPU, start-up and the files' way back included) against the same run in this
process on one thread; the time ratio (target <= 1.10), and whether the two trained the same
weights (same seed and thread count). Run it while nothing else runs on the machine.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch
from ray.cluster_utils import Cluster

from classroom.queue import RunQueue
from vae.checkpoint import read_checkpoint
from vae.config import TrainConfig

SHORT = TrainConfig(train_size=10_000, epochs=3)  # about 10 s on one thread of a Zen 4
LONG = TrainConfig(train_size=25_000, epochs=5)  # about 30 s


def timed(folder: Path, names: list[str], config: TrainConfig, **queue_args) -> float:
    """Seconds from queueing ``names`` (each a run of ``config``) to the last one's end."""
    with RunQueue(folder, **queue_args) as queue:
        print(f"  {len(names)} run(s) {queue.where}", flush=True)
        start = time.perf_counter()
        ids = [queue.submit(config, name).id for name in names]
        for i in ids:
            queue.wait(i)
        seconds = time.perf_counter() - start
        failed = [run.message for run in map(queue.snapshot, ids) if run.status != "finished"]
    assert not failed, failed
    return seconds


def on_nodes(folder: Path, nodes: int) -> float:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        return timed(folder / f"{nodes}-nodes", [f"run{i}" for i in range(4)], SHORT, ray_address=cluster.address)
    finally:
        cluster.shutdown()


def part_nodes(folder: Path) -> None:
    one = on_nodes(folder, 1)
    two = on_nodes(folder, 2)
    print(f"four runs: one node {one:.1f} s, two nodes {two:.1f} s: ratio {two / one:.2f} (target <= 0.60)")


def part_cost(folder: Path) -> None:
    here = timed(folder / "here", ["here"], LONG, ray_address="", threads=1)
    on_ray = timed(folder / "ray", ["ray"], LONG, ray_address="local")
    weights = [read_checkpoint(folder / name / f"{name}.pt")["state_dict"] for name in ("here", "ray")]
    same = weights[0].keys() == weights[1].keys() and all(torch.equal(v, weights[1][k]) for k, v in weights[0].items())
    print(f"one run: here {here:.1f} s, on Ray {on_ray:.1f} s: ratio {on_ray / here:.2f} (target <= 1.10); "
          f"same weights: {'yes' if same else 'NO'}")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("nodes", "cost", "all"), default="all")
    args = p.parse_args()
    print(f"{cpu_name()}, torch {torch.__version__}, ray {ray.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        if args.part in ("nodes", "all"):
            part_nodes(Path(folder))
        if args.part in ("cost", "all"):
            part_cost(Path(folder))


if __name__ == "__main__":
    main()
