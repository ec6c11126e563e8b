"""Classes and learners, as the server keeps them (in the checkpoint folder's store, beside the runs):
a learner is a browser's lasting token with their progress (``classroom.progress``); a class is a
name, a lesson, a run size and limits, a secret for the teacher's link, and the step the teacher
last moved it to. Free of Streamlit: the app, the tests and a command line drive it alike.

    room = Classroom(queue)                    # the queue's store holds both
    week3 = room.start_class("Week 3", "vae-basics", "lesson", runs_each=3)
    alice = room.join(token, week3.id, "Alice")
    room.save(token, alice.progress.did("drawing"))
    room.move(week3.id, 2); room.reset(week3.id)
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass, replace

from classroom.progress import Progress
from classroom.queue import QueueError, RunQueue
from classroom.store import CLASS_COLUMNS

TOKEN = re.compile(r"[0-9a-f]{32}")  # a learner's token, as ``new_token`` makes it
NAME_CHARS = 40  # a learner's or a class's name, at most
RUNS_EACH = 10  # a class's runs per learner in all, at most
SECRET_CHARS = 16  # a teacher's secret has at least this many characters (``start_class`` makes 22)


class ClassError(ValueError):
    """A class or a name that cannot be used; the message says why in a learner's words."""


@dataclass(frozen=True)
class RunSize:
    """How big a class's runs are: every learner's run trains this much."""
    epochs: int
    train_size: int | None  # None: all the training images
    label: str


# "lesson": 30 runs one after another within about 15 minutes on a Zen 4 with AVX-512 BF16, each
# learning something visible (bench/RESULTS.md, "A class's runs").
RUN_SIZES = {
    "lesson": RunSize(3, None, "3 epochs on all images (about 25 s a run)"),
    "short": RunSize(1, 20_000, "1 epoch on 20,000 images (about 5 s a run: a blurry start)"),
    "long": RunSize(10, None, "10 epochs on all images (about 2 minutes a run)"),
}


@dataclass(frozen=True)
class Class:
    id: int
    name: str
    lesson: str  # a lesson's id
    run_size: str  # a key of RUN_SIZES
    runs_each: int  # runs a learner may queue in all (one at a time)
    own_data: bool  # whether learners may train on other datasets than MNIST, and upload their own
    secret: str  # the teacher's link carries it
    created_at: float
    moved_to: int | None  # the step (from 0) the teacher last moved the class to
    moved_at: float  # when (0: never)

    def moves(self, progress: Progress) -> bool:
        """Whether the teacher has moved the class since the panel of the learner with ``progress``
        last followed a move: then it follows this one, once."""
        return self.moved_to is not None and self.moved_at > progress.followed_move


@dataclass(frozen=True)
class Learner:
    token: str
    class_id: int | None
    name: str | None  # None until they join a class
    progress: Progress
    seen_at: float


def new_token() -> str:
    """A learner's lasting token: random, so that it cannot be guessed from another's."""
    return secrets.token_hex(16)


def check_name(name: str, what: str = "name") -> str:
    """``name`` as it is kept (trimmed, spaces collapsed); ClassError for an empty, overlong or
    hostile one (control characters, markup)."""
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not name:
        raise ClassError(f"Please type a {what}.")
    if len(name) > NAME_CHARS:
        raise ClassError(f"A {what} has at most {NAME_CHARS} characters; this one has {len(name)}.")
    if any(unicodedata.category(c)[0] == "C" or c in "<>&`*_[]\\|#" for c in name):
        raise ClassError(f"A {what} may use letters, digits, spaces and - ' . , only.")
    return name


class Classroom:
    """The classes and learners of the queue's checkpoint folder. Raises QueueError when the store
    cannot be read or written, ClassError for what a user typed or asked that cannot be."""

    def __init__(self, queue: RunQueue):
        self._queue = queue
        self._store = queue.store

    # ------------------------------------------------------------ classes

    def start_class(self, name: str, lesson: str, run_size: str, runs_each: int, own_data: bool = False) -> Class:
        if run_size not in RUN_SIZES:
            raise ClassError(f"A class's run size is one of {', '.join(RUN_SIZES)}, got {run_size!r}.")
        if not 1 <= runs_each <= RUNS_EACH:
            raise ClassError(f"Each learner may queue 1 to {RUNS_EACH} runs, got {runs_each}.")
        record = {"name": check_name(name, "class name"), "lesson": lesson, "run_size": run_size,
                  "runs_each": runs_each, "own_data": own_data, "secret": secrets.token_urlsafe(16),
                  "created_at": time.time(),
                  "moved_to": None, "moved_at": 0.0}
        return Class(id=self._write(lambda: self._store.add_class(record)), **record)

    def classes(self) -> list[Class]:
        """The server's classes, each row checked field by field: a damaged one is set aside (moved out
        of the classes, kept as it was) with a notice, and its students are lone learners from then on."""
        kept = []
        for row in self._write(self._store.classes):
            try:
                kept.append(_class(row))
            except (ValueError, KeyError, TypeError) as e:
                self._queue.set_class_aside(row["id"], json.dumps(row, default=repr), e)
        return kept

    def class_of(self, class_id: int) -> Class:
        """The class ``class_id``; ClassError if there is none (an edited link)."""
        found = [c for c in self.classes() if c.id == class_id]
        if not found:
            raise ClassError(f"There is no class {class_id} on this server: ask your teacher for the class link.")
        return found[0]

    def is_teacher(self, class_id: int, secret: str) -> bool:
        """Whether ``secret`` is the class's teacher's (compared in constant time)."""
        return hmac.compare_digest(self.class_of(class_id).secret.encode(), secret.encode())

    def move(self, class_id: int, step: int) -> None:
        """Move the class to ``step`` (from 0): each student's panel follows once."""
        self._write(lambda: self._store.move_class(class_id, step, time.time()))

    def reset(self, class_id: int) -> int:
        """Archive the class's runs (stopped first; kept, not deleted) and clear its learners'
        progress, keeping their names; the class's last move is forgotten first, so that no cleared
        panel follows it back to that step. The number of runs archived."""
        self._write(lambda: self._store.move_class(class_id, None, 0.0))
        learners = self.learners(class_id)
        archived = self._queue.archive({learner.token for learner in learners})
        for learner in learners:
            self._save(learner, Progress())
        return len(archived)

    # ------------------------------------------------------------ learners

    def learner(self, token: str) -> Learner:
        """The learner ``token`` names, a new one (kept from now on) if the server has none."""
        if not TOKEN.fullmatch(token):
            raise ClassError("This browser's learner id is not one this server gives out.")
        row = self._write(lambda: self._store.learner(token))
        if row is None:
            return self._save(Learner(token, None, None, Progress(), time.time()), Progress())
        return self._learner(row)

    def name_of(self, token: str) -> str | None:
        """The name the learner ``token`` joined a class under; None for one who has not, or whom
        the server does not know (a run's owner from the command line). Reads only."""
        row = self._write(lambda: self._store.learner(token))
        return None if row is None else row["name"]

    def join(self, token: str, class_id: int, name: str) -> Learner:
        """The learner joins the class under ``name``, unique in it; ClassError for a taken one."""
        learner, name = self.learner(token), check_name(name)
        self.class_of(class_id)
        joined = Learner(token, class_id, name, learner.progress, time.time())
        try:
            self._write(lambda: self._store.save_learner(_record(joined)))
        except sqlite3.IntegrityError:
            raise ClassError(f"Someone in this class is already called {name!r}: please choose another name.") from None
        return joined

    def save(self, token: str, progress: Progress) -> Learner:
        """Keep the learner's progress (and that they were seen now)."""
        return self._save(self.learner(token), progress)

    def learners(self, class_id: int) -> list[Learner]:
        return [self._learner(row) for row in self._write(lambda: self._store.learners(class_id))]

    def _learner(self, row: dict) -> Learner:
        """The learner a row holds; a damaged progress record is kept aside and they start afresh,
        keeping their name, with a notice."""
        learner = Learner(row["token"], row["class_id"], row["name"], Progress(), row["seen_at"])
        try:
            return replace(learner, progress=Progress.from_json(row["progress"]))
        except (ValueError, KeyError, TypeError) as e:
            self._queue.keep_aside(f"learner {row['name'] or row['token'][:8]}'s progress", row["progress"], str(e))
            return self._save(learner, Progress())

    def _save(self, learner: Learner, progress: Progress) -> Learner:
        saved = Learner(learner.token, learner.class_id, learner.name, progress, time.time())
        self._write(lambda: self._store.save_learner(_record(saved)))
        return saved

    def _write(self, change):
        """``change()``, its store errors said in words (sqlite3.IntegrityError is the caller's)."""
        try:
            return change()
        except sqlite3.IntegrityError:
            raise
        except (OSError, sqlite3.Error) as e:
            raise QueueError(f"The classroom's records cannot be kept in {self._queue.folder} ({e}).") from None


def _class(row: dict) -> Class:
    """The class a row holds, every field checked: ValueError (or KeyError, TypeError) naming the
    first that is not a class's (a row edited by hand, a run size this version no longer has)."""
    if set(row) != {"id", *CLASS_COLUMNS}:
        raise ValueError(f"its fields are {', '.join(sorted(row))}")
    if row["run_size"] not in RUN_SIZES:
        raise ValueError(f"its run size is {row['run_size']!r}, not one of {', '.join(RUN_SIZES)}")
    if not isinstance(row["name"], str) or check_name(row["name"], "class name") != row["name"]:
        raise ValueError(f"its name is {row['name']!r}")
    for column, low, high in (("id", 1, math.inf), ("runs_each", 1, RUNS_EACH), ("own_data", 0, 1)):
        if not _is_int(row[column]) or not low <= row[column] <= high:
            raise ValueError(f"its {column} is {row[column]!r}")
    if not isinstance(row["lesson"], str) or not row["lesson"]:
        raise ValueError(f"its lesson is {row['lesson']!r}")
    if not isinstance(row["secret"], str) or len(row["secret"]) < SECRET_CHARS:
        raise ValueError("its teacher's secret is missing or too short to be safe")  # the secret itself unsaid
    for column in ("created_at", "moved_at"):
        if not isinstance(row[column], int | float) or not math.isfinite(row[column]) or row[column] < 0:
            raise ValueError(f"its {column} is {row[column]!r}")
    if row["moved_to"] is not None and not (_is_int(row["moved_to"]) and row["moved_to"] >= 0):
        raise ValueError(f"its moved_to is {row['moved_to']!r}")
    return Class(**{column: row[column] for column in ("id", *CLASS_COLUMNS)} | {"own_data": bool(row["own_data"])})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _record(learner: Learner) -> dict:
    return {"token": learner.token, "class_id": learner.class_id, "name": learner.name,
            "progress": learner.progress.to_json(), "seen_at": learner.seen_at}
