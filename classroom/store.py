"""The classroom's store: one SQLite database per checkpoint folder, served by one process at a
time (the app's server, or a sweep), which holds its lock file; a second process is refused.

It is ``<folder>/.classroom/store.sqlite3``, not in the queue's old ``.runs/`` folder, because it
is the classroom's and not only the queue's: the runs today, and with the teacher's view its
classes, learners and their progress, each a new step in ``SCHEMA``; and because ``.runs/``, which
held the JSON records it replaces, is kept whole as a backup. A folder of its own keeps the lock
and SQLite's journal, which comes and goes with each change, out of the folder of models.

Each change is one transaction, so a kill or a power cut leaves it whole or not at all. The store
keeps records as the table's columns; what a run is, and which record is a valid one, is the
queue's to say (``classroom.queue``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path

FOLDER = ".classroom"  # in the checkpoint folder
DATABASE = f"{FOLDER}/store.sqlite3"
LOCK = f"{FOLDER}/lock"  # flock-ed by the process serving the store: two would both train the queue's runs
# SCHEMA[i] takes a database from version i to version i + 1 (PRAGMA user_version): append a step
# for a new table, never edit one a database may already have run.
SCHEMA = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never given twice
        name TEXT NOT NULL UNIQUE,             -- its checkpoint's file stem: one run per model
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        has_checkpoint INTEGER NOT NULL,
        queued_at REAL NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        config TEXT NOT NULL,                  -- JSON: the run's TrainConfig fields
        history_epochs TEXT NOT NULL           -- JSON: its epochs' metrics
    );
    CREATE TABLE set_aside (                   -- records that could not be read, kept as they were
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,                  -- where it was: "runs 7", ".runs/000002.json"
        record TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    # A class's runs are archived, not deleted, when the teacher resets it: an archived run's name is
    # free again, so the name is unique among the runs not archived (a table rebuilt for the index).
    # A learner is a browser's lasting token; in a class, their name is unique in it.
    """
    CREATE TABLE runs_kept (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        has_checkpoint INTEGER NOT NULL,
        queued_at REAL NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        config TEXT NOT NULL,
        history_epochs TEXT NOT NULL,
        archived_to TEXT                       -- the folder its model was moved to by a reset, or NULL
    );
    INSERT INTO runs_kept SELECT *, NULL FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_kept RENAME TO runs;
    CREATE UNIQUE INDEX run_names ON runs (name) WHERE archived_to IS NULL;
    CREATE TABLE classes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        lesson TEXT NOT NULL,
        run_size TEXT NOT NULL,                -- a key of classroom.classes.RUN_SIZES
        runs_each INTEGER NOT NULL,            -- runs a learner may queue in all
        secret TEXT NOT NULL,                  -- the teacher's link carries it
        created_at REAL NOT NULL,
        moved_to INTEGER,                      -- the step (from 0) the teacher last moved the class to
        moved_at REAL NOT NULL                 -- when (0: never); a panel follows a move once
    );
    CREATE TABLE learners (
        token TEXT PRIMARY KEY,                -- a browser's lasting id (its cookie)
        class_id INTEGER REFERENCES classes (id),
        name TEXT,
        progress TEXT NOT NULL,                -- JSON: classroom.progress.Progress
        seen_at REAL NOT NULL,
        UNIQUE (class_id, name)
    );
    """,
    # Whether a class's learners may train on datasets of their own, uploads included (off before).
    """
    ALTER TABLE classes ADD COLUMN own_data INTEGER NOT NULL DEFAULT 0;
    """,
)
RUN_COLUMNS = ("name", "owner", "status", "message", "epoch", "has_checkpoint", "queued_at", "started_at",
               "ended_at", "config", "history_epochs")
CLASS_COLUMNS = ("name", "lesson", "run_size", "runs_each", "own_data", "secret", "created_at", "moved_to",
                 "moved_at")
LEARNER_COLUMNS = ("token", "class_id", "name", "progress", "seen_at")


def read_runs(folder: Path) -> list[dict]:
    """Every run's record in ``folder``'s store, oldest first, read without serving it: what another
    process (a benchmark, an operator) sees while the server writes; [] before the store exists."""
    path = folder / DATABASE
    if not path.is_file():
        return []
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT {', '.join(('id', *RUN_COLUMNS))} FROM runs ORDER BY id")]


class Store:
    """The folder's database, its schema brought up to date. Raises BlockingIOError while another
    process serves it, another OSError or a sqlite3.Error when the folder cannot hold it; its
    methods raise sqlite3.Error when a change cannot be written (nothing of it is kept then)."""

    def __init__(self, folder: Path):
        (folder / FOLDER).mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Shared by the queue's threads (pages, runs), one statement group at a time under _lock.
            self._db = sqlite3.connect(folder / DATABASE, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._lock = threading.Lock()
            self._upgrade()
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _upgrade(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(SCHEMA[version:], start=version + 1):
            self._db.executescript(f"BEGIN; {step}; PRAGMA user_version = {number}; COMMIT;")

    def runs(self) -> list[dict]:
        """Every run's record (its id and columns) but the archived ones, oldest first."""
        with self._lock:
            return [dict(row) for row in self._db.execute(
                f"SELECT {', '.join(('id', *RUN_COLUMNS))} FROM runs WHERE archived_to IS NULL ORDER BY id")]

    def archive(self, run_ids: list[int], folder: str) -> None:
        """Mark the runs archived, their models moved to ``folder``: out of the queue, their names free."""
        with self._lock, self._db:
            self._db.executemany("UPDATE runs SET archived_to = ? WHERE id = ?", [(folder, i) for i in run_ids])

    # ------------------------------------------------------------ classes and learners

    def add_class(self, record: dict) -> int:
        """A new class (``CLASS_COLUMNS``); its id."""
        with self._lock, self._db:
            return self._db.execute(f"INSERT INTO classes ({', '.join(CLASS_COLUMNS)}) VALUES "
                                    f"({', '.join('?' * len(CLASS_COLUMNS))})",
                                    [record[column] for column in CLASS_COLUMNS]).lastrowid

    def classes(self) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._db.execute("SELECT * FROM classes ORDER BY id")]

    def set_class_aside(self, class_id: int, record: str, reason: str) -> bool:
        """Move class ``class_id`` out of the classes, kept as ``record`` (its text) in ``set_aside``;
        False if it was gone already (another thread set it aside first)."""
        with self._lock, self._db:
            if not self._db.execute("DELETE FROM classes WHERE id = ?", (class_id,)).rowcount:
                return False
            self._db.execute("INSERT INTO set_aside (source, record, reason) VALUES (?, ?, ?)",
                             (f"classes {class_id}", record, reason))
            return True

    def move_class(self, class_id: int, step: int | None, at: float) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE classes SET moved_to = ?, moved_at = ? WHERE id = ?", (step, at, class_id))

    def learner(self, token: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM learners WHERE token = ?", (token,)).fetchone()
            return dict(row) if row else None

    def learners(self, class_id: int) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._db.execute(
                "SELECT * FROM learners WHERE class_id = ? ORDER BY name", (class_id,))]

    def save_learner(self, record: dict) -> None:
        """Insert or rewrite a learner (``LEARNER_COLUMNS``); sqlite3.IntegrityError when their
        name is taken in their class."""
        with self._lock, self._db:
            self._db.execute(f"INSERT INTO learners ({', '.join(LEARNER_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(LEARNER_COLUMNS))}) ON CONFLICT (token) DO UPDATE SET "
                             + ", ".join(f"{c} = excluded.{c}" for c in LEARNER_COLUMNS[1:]),
                             [record[column] for column in LEARNER_COLUMNS])

    def add(self, records: list[dict]) -> list[int]:
        """Insert the runs (``RUN_COLUMNS`` each), all or none; their new ids. sqlite3.IntegrityError
        when a name is taken."""
        with self._lock, self._db:
            return [self._db.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES "
                                     f"({', '.join('?' * len(RUN_COLUMNS))})",
                                     [record[column] for column in RUN_COLUMNS]).lastrowid for record in records]

    def save(self, run_id: int, record: dict) -> None:
        """Rewrite run ``run_id``'s columns."""
        with self._lock, self._db:
            self._db.execute(f"UPDATE runs SET {', '.join(f'{c} = ?' for c in RUN_COLUMNS)} WHERE id = ?",
                             [*(record[column] for column in RUN_COLUMNS), run_id])

    def set_aside(self, run_id: int, record: str, reason: str) -> None:
        """Move run ``run_id`` out of the runs, kept as ``record`` (its text) in ``set_aside``."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO set_aside (source, record, reason) VALUES (?, ?, ?)",
                             (f"runs {run_id}", record, reason))
            self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def keep_aside(self, source: str, record: str, reason: str) -> None:
        """Keep a record that could not be read, as it was (a learner's damaged progress)."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO set_aside (source, record, reason) VALUES (?, ?, ?)",
                             (source, record, reason))

    def import_runs(self, records: dict[int, dict], set_aside: list[tuple[str, str, str]]) -> None:
        """The runs of an earlier store, ``{id: record}``, each under its id unless the store has it
        already (an import cut off after it was written and before its source was put away), and
        the records that could not be read as (source, text, reason): all in one transaction."""
        with self._lock, self._db:
            for run_id, record in records.items():
                self._db.execute(f"INSERT OR IGNORE INTO runs (id, {', '.join(RUN_COLUMNS)}) VALUES "
                                 f"(?, {', '.join('?' * len(RUN_COLUMNS))})",
                                 [run_id, *(record[column] for column in RUN_COLUMNS)])
            self._db.executemany("INSERT INTO set_aside (source, record, reason) VALUES (?, ?, ?)", set_aside)

    def close(self) -> None:
        self._db.close()
        os.close(self._lock_fd)  # releases the folder for another process
