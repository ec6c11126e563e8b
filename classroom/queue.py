"""A queue of training runs, so that every learner can train their own: first queued, first run,
in threads of this process or, given a Ray address, each as an actor on a Ray cluster.

A run is a ``Run``: the job snapshot of ``classroom.jobs`` (status, progress, reconstructions, film, the
weights of its latest epoch), its id and when it was queued; ``started_by`` is its owner (the app
passes its browser session's id). The queue's records are rows of the folder's store
(``classroom.store``, SQLite), one transaction at each change of status and each epoch's end, so
that a restarted server finds its queue again: a run cut off while it trained resumes from its
``.resume`` sidecar, or starts again without one. A record's id is its key and a name is taken
once; each field is checked when read, and a record that fails is set aside with a notice. An ended
run keeps in memory only what a table and a rate-distortion board need (its row and its epochs'
metrics); its checkpoint holds the rest. A folder's queue is served by one process at a time, so
no run trains twice, and a model is never overwritten: a run whose name a file took since it was
queued fails with the reason, and its first write creates its file (``vae.train``).

    queue = RunQueue("checkpoints")             # VAE_STUDIO_WORKERS, VAE_STUDIO_RAY_ADDRESS
    run = queue.submit(TrainConfig(beta=4), "beta4-mine", owner="alice")
    queue.wait(run.id); queue.snapshot(run.id).status   # "finished"

Ray is imported only when an address is given (``local`` starts an instance in this process,
``auto`` finds a running one, or ``HOST:PORT``); a cluster that cannot be reached leaves the runs
on this server, and ``notices`` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from classroom.executors import Embedded
from classroom.jobs import RUNNING, JobSnapshot, RunProgress, run_train
from classroom.ray_executor import OnRay
from classroom.store import DATABASE, FOLDER, RUN_COLUMNS, Store
from vae.checkpoint import CheckpointError, read_checkpoint, resume_path, stored_history
from vae.config import TrainConfig
from vae.data import Dataset
from vae.events import EpochEvent, Event
from vae.history import History
from vae.settings import settings
from vae.train import TrainResult, train

_LOGGER = logging.getLogger(__name__)
WORKERS_ENV = "VAE_STUDIO_WORKERS"
RAY_ADDRESS_ENV = "VAE_STUDIO_RAY_ADDRESS"
LEGACY = ".runs"  # earlier versions' records in the checkpoint folder: one NNNNNN.json per run, imported once
LEGACY_RECORD = re.compile(r"(\d+)\.json")
BACKUP = ".runs.migrated"  # where the imported folder is kept
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a run's name is its checkpoint's file stem
ACTIVE = ("queued", *RUNNING)
STATUSES = (*ACTIVE, "finished", "stopped", "failed")


class QueueError(ValueError):
    """A run cannot be queued (or the queue cannot be served); the message says why in words a user understands."""


def check_name(name: str) -> None:
    """The one rule for a run's name, its checkpoint's file stem: QueueError, quoting it, if it breaks it."""
    if not NAME.fullmatch(name):
        raise QueueError(f"A run's name may use only letters, digits, '-' and '_' (1 to 64 characters), got {name!r}.")


@dataclass(frozen=True)
class Run(JobSnapshot):
    """A run of the queue at one moment: the job snapshot's fields plus its id and queueing time."""

    id: int = 0
    queued_at: float = 0.0

    @property
    def owner(self) -> str:
        """Who queued it (``started_by``): a browser session's id in the app."""
        return self.started_by

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass
class _Entry:
    """A run's live state in the queue, and how to end it."""

    progress: RunProgress
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    resume: bool = False  # continue from its .resume sidecar (a run cut off by a restart)
    note: str = ""  # what a restart did to it, kept at the head of its final message


class RunQueue:
    """The runs of one checkpoint folder. ``workers``: runs at once in this process (default
    ``$VAE_STUDIO_WORKERS``, else 1), sharing ``threads`` torch threads (default: this thread's
    count); ``ray_address``: run each as a Ray actor instead (default
    ``$VAE_STUDIO_RAY_ADDRESS``; "" for none); ``datasets``: a run's dataset by its key
    (``TrainConfig.data``) for runs in this process (else each reads its own); ``train_fn``:
    ``vae.train.train`` or a stand-in with its signature (this process only).
    Raises QueueError, saying why and what to do, when another process serves the folder's queue
    or the folder cannot hold it."""

    def __init__(self, folder: str | Path, *, workers: int | None = None, ray_address: str | None = None,
                 threads: int | None = None, datasets: Callable[[str], Dataset] | None = None,
                 train_fn: Callable[..., TrainResult] = train):
        self.folder = Path(folder)
        self.notices: list[str] = []  # what the app should show: a damaged record, an unreachable cluster
        self._store = self._open_store()
        self._lock = threading.Lock()  # the entries, dispatching, closing
        self._save_lock = threading.Lock()  # one record write at a time, always of the latest state
        self._entries: dict[int, _Entry] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._closing = False
        try:
            self._import_legacy()
            self._load()
        except (OSError, sqlite3.Error) as e:
            self._store.close()
            raise _unusable(self.folder, e) from None
        workers = workers or self._workers_from_env()
        address = settings().ray_address if ray_address is None else ray_address
        self._executor = self._ray_or_none(address) or Embedded(workers, threads, datasets, train_fn)
        with self._lock:
            self._dispatch()

    # ------------------------------------------------------------ what the app calls

    @property
    def where(self) -> str:
        """Where runs execute, for the sidebar: "on this server" or "on the Ray cluster at …, N nodes"."""
        return self._executor.where()

    @property
    def trains_here(self) -> bool:
        """Whether runs take this machine's CPU: in this process, or on a Ray instance the queue
        started here."""
        return self._executor.trains_here

    @property
    def store(self) -> Store:
        """The folder's store, which the classroom's classes and learners share with the runs."""
        return self._store

    def submit(self, config: TrainConfig, name: str, owner: str = "", limit_per_owner: int | None = None,
               total_per_owner: int | None = None) -> Run:
        """Queue a run of ``config`` saving ``<folder>/<name>.pt``; as ``submit_all`` for one run."""
        return self.submit_all([(name, config)], owner, limit_per_owner, total_per_owner)[0]

    def submit_all(self, planned: list[tuple[str, TrainConfig]], owner: str = "",
                   limit_per_owner: int | None = None, total_per_owner: int | None = None) -> list[Run]:
        """Queue a run per (name, config), each saving ``<folder>/<name>.pt``, all or none (a
        sweep). Raises QueueError (or a config's ConfigError, both ValueErrors), with nothing
        queued, when a name is not a file stem, is given twice, or a model or a run already has it,
        or ``owner`` would have more than ``limit_per_owner`` runs queued or running (a class's one
        run at a time) or more than ``total_per_owner`` in all, or the store cannot be written."""
        for name, config in planned:
            check_name(name)
            config.validate()
        names = [name for name, _ in planned]
        if len(set(names)) < len(names):
            raise QueueError("Each run's name may be given once.")
        with self._lock:
            if self._closing:
                raise QueueError("The queue is closed.")
            runs = {run.name: run for run in self.runs()}
            for name in names:
                if name in runs:
                    raise QueueError(f"A run named {name!r} is already in the queue; choose another name."
                                     if runs[name].active else
                                     f"A run named {name!r} was queued before ({runs[name].status}); "
                                     "choose another name.")
                if (self.folder / f"{name}.pt").exists():
                    raise QueueError(f"A model named {name!r} already exists; choose another name.")
            mine = [run.name for run in runs.values() if run.active and run.owner == owner]
            if limit_per_owner is not None and len(mine) + len(planned) > limit_per_owner:
                raise QueueError(f"You already have {len(mine)} run(s) in the queue ({', '.join(mine)}); here each "
                                 f"learner may have {limit_per_owner} at a time. Wait for it to end, or stop it."
                                 if mine else f"Here each learner may have {limit_per_owner} run(s) at a time.")
            theirs = [run.name for run in runs.values() if run.owner == owner]
            if total_per_owner is not None and len(theirs) + len(planned) > total_per_owner:
                raise QueueError(f"You have queued {len(theirs)} run(s) ({', '.join(theirs)}); here each learner may "
                                 f"queue {total_per_owner} in all.")
            new = [Run(status="queued", message="Waiting for its turn.", name=name, config=config,
                       checkpoint=self.folder / f"{name}.pt", epochs=config.epochs, started_by=owner,
                       queued_at=time.time()) for name, config in planned]
            try:
                ids = self._store.add([_record(run) for run in new])  # all or none: never half a sweep
            except (OSError, sqlite3.Error) as e:
                raise _unusable(self.folder, e) from None
            entries = [_Entry(RunProgress(replace(run, id=run_id))) for run, run_id in zip(new, ids)]
            for entry in entries:
                self._entries[entry.progress.snapshot().id] = entry
            self._dispatch()
            return [entry.progress.snapshot() for entry in entries]

    def runs(self) -> list[Run]:
        """Every run this folder has queued, oldest first."""
        return [entry.progress.snapshot() for entry in list(self._entries.values())]

    def snapshot(self, run_id: int) -> Run | None:
        entry = self._entries.get(run_id)
        return entry.progress.snapshot() if entry else None

    def stop(self, run_id: int) -> None:
        """Take a queued run out of the queue, or ask a running one to end before its next batch
        (its best checkpoint is kept)."""
        with self._lock:
            entry = self._entries[run_id]
            if entry.progress.snapshot().status == "queued":
                entry.progress.update(status="stopped", message="Taken out of the queue before it started.",
                                      checkpoint=None, ended_at=time.time())
                entry.done.set()
            elif entry.progress.request_stop():
                entry.stop.set()
            else:
                return
            self._save(entry)

    def archive(self, owners: set[str], timeout: float = 60.0) -> list[Run]:
        """Take every run of ``owners`` out of the queue, kept (a class reset): the active ones are
        stopped first; their models and sidecars move to a new folder under ``.classroom/archive/``
        and their names are free again. Returns the runs archived; QueueError if one did not stop
        within ``timeout`` seconds (nothing archived then)."""
        theirs = [run for run in self.runs() if run.owner in owners]
        for run in theirs:
            if run.active:
                self.stop(run.id)
        if not all(self.wait(run.id, timeout) for run in theirs):
            raise QueueError("A run did not stop in time, so nothing was archived; try again in a minute.")
        archive = self.folder / FOLDER / "archive" / time.strftime("%Y%m%d-%H%M%S")
        with self._lock:
            ended = [self._entries.pop(run.id).progress.snapshot() for run in theirs]
            try:
                archive.mkdir(parents=True, exist_ok=True)
                for run in ended:
                    for path in (self.folder / f"{run.name}.pt", resume_path(self.folder / f"{run.name}.pt")):
                        if path.exists():
                            path.rename(archive / path.name)
                self._store.archive([run.id for run in ended], str(archive))
            except (OSError, sqlite3.Error) as e:
                raise _unusable(self.folder, e) from None
        return ended

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or ``timeout`` seconds pass (False)."""
        return self._entries[run_id].done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop serving the folder: no run starts any more, the running ones are cut off (their
        records still say running, so the next queue on this folder resumes them) and waited for."""
        with self._lock:
            self._closing = True
            for entry in self._entries.values():
                entry.stop.set()
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)
        self._executor.close()
        self._store.close()  # and the folder, for another process

    def __enter__(self) -> RunQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ start-up

    def _open_store(self) -> Store:
        """The folder's store, for this process alone: two processes serving one queue would both
        train its runs."""
        try:
            return Store(self.folder)
        except BlockingIOError:
            raise QueueError(f"Another process (the app, or a sweep) serves the queue of {self.folder}; "
                             "use another checkpoint folder.") from None
        except (OSError, sqlite3.Error) as e:
            raise _unusable(self.folder, e) from None

    def _workers_from_env(self) -> int:
        text = settings().workers
        if text.isdigit() and int(text) >= 1:
            return int(text)
        if text:
            self._notice(f"{WORKERS_ENV}={text!r} is not a whole number >= 1; runs execute one at a time.")
        return 1

    def _ray_or_none(self, address: str) -> OnRay | None:
        if not address:
            return None
        try:
            return OnRay(address)
        except Exception as e:  # ray missing, unreachable or refusing: the runs stay here, and the app says why
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            self._notice(f"The Ray cluster at {address} could not be reached ({reason}); runs execute on this server.")
            return None

    def keep_aside(self, source: str, record: str, reason: str) -> None:
        """Keep a record of the folder's store that could not be read (``source`` names it) and say
        so in ``notices``; the caller goes on without it."""
        try:
            self._store.keep_aside(source, record, reason)
        except (OSError, sqlite3.Error) as e:
            raise _unusable(self.folder, e) from None
        self._notice(f"The record of {source} in {self.folder / DATABASE} was damaged ({reason}) and is set aside.")

    def set_class_aside(self, class_id: int, record: str, error: Exception) -> None:
        """Move class ``class_id``'s row, which ``error`` says is damaged, out of the classes, kept as
        ``record`` (its text), and say so in ``notices``, once however many readers found it."""
        try:
            moved = self._store.set_class_aside(class_id, record, f"damaged: {_reason(error)}")
        except (OSError, sqlite3.Error) as e:
            raise _unusable(self.folder, e) from None
        if moved:
            self._notice(f"The record of class {class_id} in {self.folder / DATABASE} was damaged ({_reason(error)}) "
                         "and is set aside: its students are lone learners until their teacher starts a class again.")

    def _notice(self, message: str) -> None:
        _LOGGER.error(message)
        self.notices.append(message)

    def _import_legacy(self) -> None:
        """Once, the JSON records of earlier versions (``.runs/NNNNNN.json``) into the store, each
        checked as a row is, its id its file's, a name once (the first record keeps it); the folder
        is then kept as a backup, and the records set aside are named in a notice."""
        legacy = self.folder / LEGACY
        if not legacy.is_dir():
            return
        records, aside = {}, []
        for path in sorted(legacy.iterdir()):
            match = LEGACY_RECORD.fullmatch(path.name)
            if not match:
                continue
            text = path.read_text(errors="replace")
            try:
                record = json.loads(text)
                run = _from_record({**record, "config": json.dumps(record["config"]),
                                    "history_epochs": json.dumps(record["history_epochs"])}, self.folder)
            except (ValueError, KeyError, TypeError) as e:
                aside.append((path.name, text, f"damaged: {_reason(e)}"))
                continue
            if run.id != int(match[1]):
                aside.append((path.name, text, f"its id is {run.id}"))
            elif any(kept.name == run.name for kept in records.values()):
                aside.append((path.name, text, f"a second run named {run.name!r}"))
            else:
                records[run.id] = run
        self._store.import_runs({run.id: _record(run) for run in records.values()},
                                [(f"{LEGACY}/{name}", text, reason) for name, text, reason in aside])
        backup = next(path for path in (self.folder / f"{BACKUP}{n}" for n in ("", *range(2, 1000)))
                      if not path.exists())
        legacy.rename(backup)
        _LOGGER.warning("The queue's %d records in %s are now in %s; the old folder is kept as %s.",
                        len(records), legacy, self.folder / DATABASE, backup)
        if aside:
            named = ", ".join(f"{name} ({reason})" for name, _, reason in aside)
            self._notice(f"The queue's records {named} in {legacy} are set aside (kept in {backup}); the rest of the "
                         "queue is kept.")

    def _load(self) -> None:
        """The store's runs, oldest first, each checked field by field: one that fails is set
        aside with a notice; runs cut off while they trained are queued again."""
        aside = []
        for record in self._store.runs():
            try:
                run = _from_record(record, self.folder)
            except (ValueError, KeyError, TypeError) as e:
                self._store.set_aside(record["id"], json.dumps(record, default=repr), f"damaged: {_reason(e)}")
                aside.append(f"run {record['id']} ({_reason(e)})")
                continue
            self._entries[run.id] = self._cut_off(run) if run.status in RUNNING else _Entry(RunProgress(run))
        if aside:
            self._notice(f"The queue's records of {', '.join(aside)} in {self.folder / DATABASE} were damaged and "
                         "are set aside; the rest of the queue is kept.")

    def _cut_off(self, run: Run) -> _Entry:
        """A run the last server left running: queued again, from its sidecar where that is on
        this disk, else from the beginning; one left stopping ends as stopped."""
        path = run.checkpoint
        kept = path if path.is_file() else None
        if run.status == "stopping":
            message = "Stopped: the server restarted while it was stopping." + (
                " The best checkpoint is kept." if kept else "")
            entry = _Entry(RunProgress(replace(run, status="stopped", message=message, checkpoint=kept,
                                               ended_at=time.time())))
            entry.done.set()
            self._save(entry)
            return entry
        history = History()
        if kept and resume_path(path).is_file():
            try:
                history = stored_history(read_checkpoint(path), path.name)  # as the sidecar has it (written together)
            except CheckpointError as e:
                _LOGGER.warning("Cannot resume %s: %s", path.name, e)
        epochs = len(history.epochs)
        note = (f"Resumed after epoch {epochs} (from its .resume file) when the server restarted." if epochs else
                "Started again from the beginning when the server restarted (no .resume file on this server).")
        entry = _Entry(RunProgress(replace(run, status="queued", message=note, history=history, step=0, epoch=0,
                                           started_at=0.0)), resume=epochs > 0, note=note)
        self._save(entry)
        return entry

    # ------------------------------------------------------------ running

    def _dispatch(self) -> None:
        """Start the oldest queued runs while the executor has room (callers hold the lock)."""
        if self._closing:
            return
        runs = self.runs()
        room = self._executor.capacity() - sum(run.running for run in runs)
        for run in [run for run in runs if run.status == "queued"]:
            if room <= 0:
                return
            entry = self._entries[run.id]
            if not entry.resume and run.checkpoint.exists():  # a file took its name since it was queued
                self._end(entry, "failed", f"A model named {run.name!r} appeared in the checkpoint folder after "
                          "this run was queued; it is left as it is, and this run did not start. Queue it again "
                          "under another name.", checkpoint=None)
                entry.done.set()
                continue
            room -= 1
            entry.progress.update(status="running", message="Resuming…" if entry.resume else "Starting…",
                                  started_at=time.time())
            self._save(entry)
            thread = threading.Thread(target=self._execute, args=(entry, run), name=f"vae-run-{run.id}", daemon=True)
            self._threads[run.id] = thread
            thread.start()

    def _execute(self, entry: _Entry, run: Run) -> None:
        """A run's thread: train it through the executor, then record its end and start the next."""
        def on_event(event: Event) -> None:
            entry.progress.on_event(event)
            if isinstance(event, EpochEvent):
                self._save(entry)

        status, message, checkpoint = run_train(self._executor.train, run.config, run.checkpoint, stop=entry.stop,
                                                callback=on_event, resume=entry.resume)
        with self._lock:
            cut_off = self._closing and entry.progress.snapshot().status == "running" and status == "stopped"
            if not cut_off:  # a close cuts a run off: its record stays "running", for the next queue to resume
                self._end(entry, status, message, checkpoint)
            del self._threads[run.id]
            self._dispatch()
            entry.done.set()  # after the next run has started: who waits for this one finds it so
        _return_freed_memory()

    def _end(self, entry: _Entry, status: str, message: str, checkpoint: Path | None) -> None:
        """Record the run's end, slim in memory, with what a restart did to it at the head of its message."""
        entry.progress = RunProgress(_slim(entry.progress.snapshot(), status=status, checkpoint=checkpoint,
                                           message=f"{entry.note} {message}".strip(), ended_at=time.time()))
        self._save(entry)

    def _save(self, entry: _Entry) -> None:
        """Rewrite the run's record; a failed write is logged, and the next change writes it again."""
        try:
            with self._save_lock:
                run = entry.progress.snapshot()
                self._store.save(run.id, _record(run))
        except (OSError, sqlite3.Error):
            _LOGGER.exception("The queue's record of a run could not be written")


def _return_freed_memory() -> None:
    """Give the memory an ended run freed back to the system: glibc keeps it in the arena of the
    run's thread, so a server that has trained a class's runs would hold on to their peaks."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _slim(run: Run, **changes) -> Run:
    """What an ended run keeps in memory: its row and its epochs' metrics (its file holds the rest)."""
    return replace(run, history=History(epochs=run.history.epochs), reconstructions=None, film=None,
                   weights=None, **changes)


def _unusable(folder: Path, error: Exception) -> QueueError:
    """A folder that cannot hold the queue, in words: which, why, and what to do."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return QueueError(f"The queue of runs cannot be kept in {folder} ({reason}). Let this server's user write "
                      f"there (the folder and its {FOLDER}/), or use another checkpoint folder "
                      "(VAE_CHECKPOINT_DIR, or a sweep's --out), then start again.")


def _reason(error: Exception) -> str:
    """Why a record was refused, for a notice."""
    return f"no {error.args[0]!r} field" if isinstance(error, KeyError) else str(error) or type(error).__name__


def _record(run: Run) -> dict:
    """The run's row in the store (``classroom.store.RUN_COLUMNS``; its id is the row's key)."""
    return {"name": run.name, "owner": run.started_by, "status": run.status, "message": run.message,
            "epoch": run.epoch, "has_checkpoint": run.checkpoint is not None, "queued_at": run.queued_at,
            "started_at": run.started_at, "ended_at": run.ended_at, "config": json.dumps(asdict(run.config)),
            "history_epochs": _history_to_record(run.history)}


def _from_record(record: dict, folder: Path) -> Run:
    """The run a row describes, every field checked: ValueError (or KeyError, TypeError) naming
    the first that is not a run's."""
    if set(record) != {"id", *RUN_COLUMNS}:
        raise ValueError(f"its fields are {', '.join(sorted(record))}")
    name, status = record["name"], record["status"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"not a run's name: {name!r}")
    if status not in STATUSES:
        raise ValueError(f"not a status: {status!r}")
    config = TrainConfig(**json.loads(record["config"]))
    config.validate()
    for column, kind in (("owner", str), ("message", str), ("id", int), ("epoch", int), ("has_checkpoint", int)):
        if not isinstance(record[column], kind) or kind is int and record[column] < 0:
            raise ValueError(f"its {column} is {record[column]!r}")
    for column in ("queued_at", "started_at", "ended_at"):
        if not _is_number(record[column]) or not math.isfinite(record[column]):
            raise ValueError(f"its {column} is {record[column]!r}")
    checkpoint = folder / f"{name}.pt" if record["has_checkpoint"] or status in ACTIVE else None
    return Run(status=status, message=record["message"], name=name, config=config, checkpoint=checkpoint,
               epoch=record["epoch"], epochs=config.epochs, history=_history_from_record(record["history_epochs"]),
               started_at=record["started_at"], ended_at=record["ended_at"], started_by=record["owner"],
               id=record["id"], queued_at=record["queued_at"])


def _history_to_record(history: History) -> str:
    """A run's history as its row keeps it: the epochs' scores (the steps are in its checkpoint)."""
    return json.dumps(history.to_dict()["epochs"])


def _history_from_record(text: str) -> History:
    """A row's history, each epoch's every field read: RecordError (a ValueError) naming the first that is not."""
    return History.from_dict({"steps": [], "epochs": json.loads(text)})


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
