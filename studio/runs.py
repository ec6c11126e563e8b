"""The class's runs: the server's one queue (``classroom.queue.RunQueue``) on the checkpoint folder, who
this browser is to it, and which run a page follows."""

from __future__ import annotations

import contextlib
import uuid

import streamlit as st

from classroom.queue import QueueError, Run, RunQueue
from studio.resources import TRAINING_THREADS, checkpoint_dir, mnist
from vae.settings import settings

OWNER_KEY = "runs_owner"  # session_state: this browser's id as the owner of its runs


@st.cache_resource(show_spinner=False)
def _queue(folder: str) -> RunQueue:
    # Runs in this process share the cores the process started with, whatever count the script
    # run that queued them had set (resources.use_one_thread).
    return RunQueue(folder, threads=TRAINING_THREADS, data=mnist(), ray_address=settings().ray_address)


def queue() -> RunQueue:
    """The queue of the checkpoint folder: one per server, every session's runs in it. Raises
    QueueError, saying why, while another process (a sweep) serves that folder's queue."""
    mnist()  # in the script run, where its spinner can show
    return _queue(str(checkpoint_dir().resolve()))


def start() -> None:
    """Serve the checkpoint folder's queue from now on, so that runs queued before a restart train
    at once rather than when a first page is opened (``python -m studio.serve`` calls it as the
    server starts); a folder that cannot hold the queue is left for the pages to say."""
    with contextlib.suppress(QueueError):
        queue()


def close() -> None:
    """End the checkpoint folder's queue (its running runs are cut off, to resume at the next
    start) and forget it; other folders' queues are left alone."""
    folder = str(checkpoint_dir().resolve())
    with contextlib.suppress(QueueError):
        _queue(folder).close(timeout=60)
    _queue.clear(folder)


def all_runs() -> list[Run]:
    """Every run of the queue, oldest first; none while the queue cannot be served."""
    try:
        return queue().runs()
    except QueueError:
        return []


def owner() -> str:
    """This browser session's id: its runs' owner."""
    return st.session_state.setdefault(OWNER_KEY, uuid.uuid4().hex)


def running() -> list[Run]:
    """The runs training now, oldest first."""
    return [run for run in all_runs() if run.running]


def followed() -> Run | None:
    """The run a page that follows "the run training now" shows: this browser's own, else the
    one that started first."""
    now = running()
    return next((run for run in now if run.owner == owner()), now[0] if now else None)


def who(run: Run) -> str:
    """The run's owner as a table shows it: "you", or a short tag that tells learners apart."""
    return "you" if run.owner == owner() else f"learner {run.owner[:4]}" if run.owner else "command line"
