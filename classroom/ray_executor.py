"""Runs on a Ray cluster: each run an actor (``RayTrainer``) that trains on a worker and hands its
events and checkpoint back; Ray is imported only when a queue is given an address."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from classroom.jobs import run_train
from vae.checkpoint import resume_path
from vae.config import TrainConfig
from vae.datasets import BUILT_IN, kept_path, load_dataset
from vae.events import EndEvent, EpochEvent, Event, FrameEvent, StepEvent
from vae.files import rename_new, write_atomically
from vae.settings import settings
from vae.train import TrainResult, train

POLL_S = 0.5  # how often a Ray run's events are collected
CPUS_PER_RUN = 1  # each Ray run's CPUs, and so its torch threads
GPU_SHARE = 0.25  # of a GPU per Ray run where the cluster has GPUs: an MNIST VAE leaves most of one idle
LOST = "the Ray worker running it was lost"


class OnRay:
    """Each run a Ray actor (``RayTrainer``) with its own CPU (and a GPU share where the cluster
    has GPUs), as many at once as the cluster has room for. Its events are collected every
    ``POLL_S`` seconds; its checkpoint comes back as bytes and is written here, at its path."""

    def __init__(self, address: str):
        import ray

        self._ray = ray
        self._started = not ray.is_initialized()  # else: this process has already joined one (the tests, the bench)
        if self._started and address == "local":
            ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False)
        elif self._started:
            check_reachable(address)
            ray.init(address=address)
        gpus = ray.cluster_resources().get("GPU", 0)
        self._options = {"num_cpus": CPUS_PER_RUN, "num_gpus": GPU_SHARE if gpus else 0}
        self._trainer = ray.remote(RayTrainer)
        self.trains_here = address == "local"
        self._address = ray.get_runtime_context().gcs_address

    def where(self) -> str:
        nodes = sum(node["Alive"] for node in self._ray.nodes())
        return f"on the Ray cluster at {self._address}, {nodes} node{'s' * (nodes != 1)}"

    def capacity(self) -> int:
        free = self._ray.cluster_resources()
        room = free.get("CPU", 0) // self._options["num_cpus"]
        if self._options["num_gpus"]:
            room = min(room, free.get("GPU", 0) // self._options["num_gpus"])
        return max(int(room), 1)

    def train(self, config: TrainConfig, path: Path, *, stop: threading.Event, callback: Callable[[Event], None],
              resume: bool = False) -> TrainResult:
        """The run on an actor, as ``vae.train.train`` would have it here; a lost worker fails it."""
        ray = self._ray
        epoch = 0  # the last epoch whose event came back
        owns_file = resume  # the model file at path is this run's: it resumes from it, or has written it
        name = f"vae-run:{os.urandom(4).hex()}:{socket.gethostname()}:{path}"  # for `ray list actors`
        actor = self._trainer.options(**self._options, name=name).remote(CPUS_PER_RUN)
        try:
            actor.start.remote(asdict(config), path.name, _read_files(path) if resume else None, _dataset_file(config))
            stop_sent = False
            while True:
                if stop.is_set() and not stop_sent:
                    actor.stop.remote()
                    stop_sent = True
                report = ray.get(actor.poll.remote())
                for event in report["events"]:
                    callback(event)
                    if isinstance(event, EpochEvent):
                        epoch = event.epoch
                if report["files"]:
                    _write_files(path, report["files"], first=not owns_file)
                    owns_file = True
                if report["result"]:
                    status, message = report["result"]
                    return TrainResult(status, message, path if owns_file else None)
                stop.wait(POLL_S)
        except _worker_lost_errors(ray):
            when = f"after epoch {epoch}" if epoch else "before an epoch ended"
            kept = "its last checkpoint is kept" if owns_file else "no checkpoint had come back"
            return TrainResult("failed", f"Failed: {LOST} {when}; {kept}.", path if owns_file else None)
        finally:
            ray.kill(actor)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def _worker_lost_errors(ray) -> tuple[type[Exception], ...]:
    """Ray's errors (``ray.exceptions``, Ray 2.60) that mean the worker running a run is gone, or
    the node under it, or the results it held: with a node's raylet killed, ``ray.get`` raises any
    of them, depending on what was in flight."""
    errors = ray.exceptions
    return (errors.RayActorError,  # and its ActorDiedError, ActorUnavailableError: the actor's process
            errors.WorkerCrashedError, errors.NodeDiedError, errors.LocalRayletDiedError,
            errors.ObjectLostError,  # and its OwnerDiedError, ObjectReconstructionFailedError, ...: a result's copies
            errors.RaySystemError)  # what Ray raises when a raylet is killed under a call


def check_reachable(address: str) -> None:
    """Raise ConnectionError unless something answers at the cluster's address within a few
    seconds: ``ray.init`` retries an unreachable one for minutes."""
    from ray._private.services import canonicalize_bootstrap_address  # resolves "auto" as ray.init does

    target = address.removeprefix("ray://") if address.startswith("ray://") else canonicalize_bootstrap_address(address)
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers at {target}: {e}") from None


def _dataset_file(config: TrainConfig) -> bytes | None:
    """The kept file of a run's added dataset, shipped with the run; None for a built-in one, which
    the worker's own install has (MNIST's wheel, scikit-learn's digits)."""
    if config.data in BUILT_IN:
        return None
    return kept_path(settings().data_dir, config.data).read_bytes()


class RayTrainer:
    """One run on a Ray worker (an actor through ``ray.remote``): ``vae.train.train`` in a thread
    of its own, on its dataset (a built-in one as the worker's own install finds it, an added one
    shipped with the run), into a temporary folder. ``poll``
    hands over the events since the last call (of steps and film frames only the latest: each
    supersedes the one before) and, after each new best epoch and at the end, the checkpoint and
    its sidecar as bytes, so workers need no shared disk."""

    def __init__(self, threads: int):
        self._threads = threads
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: list[Event] = []
        self._files: dict | None = None
        self._result: tuple[str, str] | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="vae-run-"))
        self._path: Path | None = None  # the run's checkpoint in that folder

    def start(self, config: dict, name: str, files: dict | None, dataset: bytes | None) -> None:
        self._path = self._folder / name
        config = TrainConfig(**config)
        if files:
            _write_files(self._path, files, first=False)  # a resumed run's own files, in this actor's folder
        data_dir = None  # the worker's own, for a built-in dataset
        if dataset is not None:
            data_dir = self._folder / "data"
            write_atomically(kept_path(data_dir, config.data), lambda f: f.write(dataset))
        threading.Thread(target=self._train, args=(config, files is not None, data_dir), daemon=True).start()

    def poll(self) -> dict:
        with self._lock:
            report = {"events": self._events, "files": self._files, "result": self._result}
            self._events, self._files = [], None
            return report

    def stop(self) -> None:
        self._stop.set()

    def _train(self, config: TrainConfig, resume: bool, data_dir: Path | None) -> None:
        torch.set_num_threads(self._threads)
        def train_on_its_data(config: TrainConfig, path: Path, **kwargs) -> TrainResult:
            return train(config, path, data=load_dataset(config.data, data_dir), **kwargs)  # a failure is said

        status, message, kept = run_train(train_on_its_data, config, self._path, stop=self._stop,
                                          callback=self._on_event, **({"resume": True} if resume else {}))
        files = _read_files(self._path) if kept else None
        shutil.rmtree(self._folder, ignore_errors=True)
        with self._lock:
            self._files = files or self._files
            self._result = (status, message)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, EndEvent):
            return
        files = _read_files(self._path) if isinstance(event, EpochEvent) and event.improved else None
        with self._lock:
            if isinstance(event, (StepEvent, FrameEvent)):
                self._events = [e for e in self._events if type(e) is not type(event)]
            self._events.append(event)
            self._files = files or self._files


def _read_files(path: Path) -> dict:
    return {"checkpoint": path.read_bytes(), "resume": resume_path(path).read_bytes()}


def _write_files(path: Path, files: dict, *, first: bool) -> None:
    """A run's checkpoint, then its sidecar, written atomically at ``path`` as ``vae.train`` writes
    them: the ``first`` write of a run creates the model file only under a free name
    (``vae.files.rename_new``), so a model that took the name meanwhile is never replaced."""
    target = path.with_name(f".{path.name}.new.tmp") if first else path
    write_atomically(target, lambda f: f.write(files["checkpoint"]), durable=True)
    if first:
        rename_new(target, path)
    write_atomically(resume_path(path), lambda f: f.write(files["resume"]), durable=True)
