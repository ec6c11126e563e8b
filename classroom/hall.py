"""The lecture hall: several app servers, one classroom. Given a Ray cluster's address (not
"local"), the checkpoint folder's queue and store (``RunQueue``: runs, classes, learners, their
progress) are served by one named, detached Ray actor on the cluster's head node, which trains the
runs on the cluster's workers; every app server reaches it through a ``HallQueue``, which has the
queue's methods. The first app server to look for it starts it; Ray restarts it from the store if
its process dies (its running runs resume from their sidecars, its queued ones run).

    queue = open_queue("checkpoints", "10.0.0.5:6380")   # a HallQueue; "" or "local": a RunQueue

The replicas and the head share the checkpoint folder (one machine, or a shared disk at the same
path), where the store's SQLite file, the models and the added datasets are.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from classroom.queue import QueueError, Run, RunQueue
from classroom.ray_executor import check_reachable
from vae.config import TrainConfig
from vae.settings import configure, settings

_LOGGER = logging.getLogger(__name__)
ACTOR = "vae-studio-classroom"  # `ray list actors` shows it so
NAMESPACE = "vae-studio"
HEAD = "node:__internal_head__"  # the resource only a Ray cluster's head node has
CALLS_AT_ONCE = 64  # the actor's threads: every replica's pages, and the runs' waits, at once
FRESH_S = 0.5  # how long a replica reuses the runs it read: its sessions all ask at each refresh
WHERE_S = 10.0  # and where they train, with the notices: they change seldom
# The store's calls for classes and learners (``classroom.classes``); its runs change through the queue alone.
STORE_CALLS = frozenset({"add_class", "classes", "set_class_aside", "move_class", "learner", "learners",
                         "save_learner"})


def on_cluster(address: str) -> bool:
    """Whether ``address`` names a cluster to hold the classroom (not none, not "local")."""
    return address not in ("", "local")


def open_queue(folder: str | Path, address: str, **here) -> RunQueue | HallQueue:
    """The checkpoint folder's queue: the hall's, on the cluster at ``address``, else one this process
    serves (``here``: RunQueue's other arguments). A cluster that cannot be reached leaves the queue
    to this process, and its ``notices`` say why."""
    if not on_cluster(address):
        return RunQueue(folder, ray_address=address, **here)
    try:
        return HallQueue(folder, address)
    except ConnectionError as e:
        queue = RunQueue(folder, ray_address="", **here)
        queue.notices.append(f"The Ray cluster at {address} could not be reached ({e}); the queue is kept here, "
                             "and runs execute on this server.")
        return queue


class ClassroomServer:
    """The hall's classroom, as a Ray actor: the checkpoint folder's ``RunQueue``, its runs on the
    cluster. Its methods are the queue's, the listed runs without their live weights, pictures and
    film (a replica asks for one run's whole snapshot when a page shows it)."""

    def __init__(self, folder: str, data_dir: str):
        configure(checkpoint_dir=Path(folder), data_dir=Path(data_dir))  # an added dataset ships from there
        self._queue = RunQueue(folder, ray_address="auto")  # Ray is up in an actor: the runs go to its workers

    def describe(self) -> dict:
        return {"folder": str(self._queue.folder), "where": self._queue.where, "notices": list(self._queue.notices),
                "pid": os.getpid()}

    def submit_all(self, planned: list[tuple[str, TrainConfig]], owner: str, limit_per_owner: int | None,
                   total_per_owner: int | None) -> list[Run]:
        return self._queue.submit_all(planned, owner, limit_per_owner, total_per_owner)

    def runs(self) -> list[Run]:
        return [replace(run, weights=None, reconstructions=None, film=None) for run in self._queue.runs()]

    def snapshot(self, run_id: int) -> Run | None:
        return self._queue.snapshot(run_id)

    def stop(self, run_id: int) -> None:
        self._queue.stop(run_id)

    def archive(self, owners: set[str], timeout: float) -> list[Run]:
        return self._queue.archive(owners, timeout)

    def wait(self, run_id: int, timeout: float | None) -> bool:
        return self._queue.wait(run_id, timeout)

    def keep_aside(self, source: str, record: str, reason: str) -> None:
        self._queue.keep_aside(source, record, reason)

    def set_class_aside(self, class_id: int, record: str, error: Exception) -> None:
        self._queue.set_class_aside(class_id, record, error)

    def store(self, method: str, *args):
        """A call of the store's (classes and learners), by name."""
        if method not in STORE_CALLS:
            raise AttributeError(f"the store has no call {method!r}")
        return getattr(self._queue.store, method)(*args)


class HallQueue:
    """The hall's queue as an app server sees it: ``RunQueue``'s calls, each answered by the
    classroom's actor on the cluster (found by name, started by the first server to look for it).
    Raises ConnectionError when nothing answers at ``address``, QueueError when the actor cannot
    serve ``folder`` (another process serves it, or the actor serves another folder)."""

    trains_here = False  # the runs train on the cluster's workers

    def __init__(self, folder: str | Path, address: str):
        import ray

        self.folder = Path(folder).resolve()
        self._ray = ray
        if not ray.is_initialized():
            check_reachable(address)
            ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=False)
        self._actor = ray.remote(ClassroomServer).options(
            name=ACTOR, namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
            max_restarts=-1, max_task_retries=-1,  # a lost actor comes back from its store; calls wait for it
            max_concurrency=CALLS_AT_ONCE, num_cpus=0, resources={HEAD: 0.001},
        ).remote(str(self.folder), str(settings().data_dir.resolve()))
        self._lock = threading.Lock()
        self._kept: dict[object, tuple[float, object]] = {}  # what was read, by key: (when, value)
        served = self._call("describe")["folder"]
        if Path(served) != self.folder:
            raise QueueError(f"The lecture hall's classroom on the Ray cluster at {address} serves {served}, and this "
                             f"server's checkpoint folder is {self.folder}: give every app server the same folder "
                             "(VAE_CHECKPOINT_DIR).")

    @property
    def where(self) -> str:
        return self._described()["where"]

    @property
    def notices(self) -> list[str]:
        return self._described()["notices"]

    @property
    def store(self) -> _HallStore:
        return _HallStore(self._call)

    def submit(self, config: TrainConfig, name: str, owner: str = "", limit_per_owner: int | None = None,
               total_per_owner: int | None = None) -> Run:
        return self.submit_all([(name, config)], owner, limit_per_owner, total_per_owner)[0]

    def submit_all(self, planned: list[tuple[str, TrainConfig]], owner: str = "",
                   limit_per_owner: int | None = None, total_per_owner: int | None = None) -> list[Run]:
        return self._changing(lambda: self._call("submit_all", planned, owner, limit_per_owner, total_per_owner))

    def runs(self) -> list[Run]:
        return self._fresh("runs", FRESH_S, lambda: self._call("runs"))

    def snapshot(self, run_id: int) -> Run | None:
        return self._fresh(run_id, FRESH_S, lambda: self._call("snapshot", run_id))

    def stop(self, run_id: int) -> None:
        self._changing(lambda: self._call("stop", run_id))

    def archive(self, owners: set[str], timeout: float = 60.0) -> list[Run]:
        return self._changing(lambda: self._call("archive", owners, timeout))

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        return self._call("wait", run_id, timeout)

    def keep_aside(self, source: str, record: str, reason: str) -> None:
        self._changing(lambda: self._call("keep_aside", source, record, reason))

    def set_class_aside(self, class_id: int, record: str, error: Exception) -> None:
        self._changing(lambda: self._call("set_class_aside", class_id, record, error))

    def close(self, timeout: float | None = None) -> None:
        """Nothing to end here: the actor serves the other app servers, and goes on without this one."""

    def __enter__(self) -> HallQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, *args):
        """The actor's answer to ``method(*args)``; what it raised is raised here as it was."""
        errors = self._ray.exceptions
        try:
            return self._ray.get(getattr(self._actor, method).remote(*args))
        except errors.RayTaskError as e:
            raise e.cause from None
        except errors.RayActorError as e:
            reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise QueueError(f"The classroom's queue on the Ray cluster cannot serve the runs ({reason}).") from None

    def _described(self) -> dict:
        """The actor's ``describe()``, read again every WHERE_S."""
        return self._fresh("describe", WHERE_S, lambda: self._call("describe"))

    def _fresh(self, key: object, seconds: float, read: Callable[[], object]):
        """``read()``, or what it gave less than ``seconds`` ago: every session of this server asks."""
        with self._lock:
            kept = self._kept.get(key)
        if kept and time.monotonic() - kept[0] < seconds:
            return kept[1]
        value = read()
        with self._lock:
            self._kept[key] = (time.monotonic(), value)
        return value

    def _changing(self, change: Callable[[], object]):
        """``change()``, after which this server reads the runs afresh (its user sees their change)."""
        try:
            return change()
        finally:
            with self._lock:
                self._kept = {key: kept for key, kept in self._kept.items() if key == "describe"}


class _HallStore:
    """The store's calls (``classroom.store.Store``), answered by the hall's actor."""

    def __init__(self, call: Callable):
        self._call = call

    def __getattr__(self, method: str):
        if method not in STORE_CALLS:
            raise AttributeError(method)
        return lambda *args: self._call("store", method, *args)
