"""The class's runs: the server's one queue (``classroom.queue.RunQueue``, or in a lecture hall the
cluster's, ``classroom.hall.HallQueue``) on the checkpoint folder and the classroom kept beside it,
who this browser is to them, and which run a page follows."""

from __future__ import annotations

import contextlib

import streamlit as st

from classroom.classes import Classroom
from classroom.hall import HallQueue, open_queue
from classroom.queue import QueueError, Run, RunQueue
from studio import identity
from studio.resources import TRAINING_THREADS, checkpoint_dir, dataset
from vae.settings import settings

NAMES_TTL_S = 10  # a learner's name is read again this often: a class's tables show many, on every refresh


@st.cache_resource(show_spinner=False)
def _queue(folder: str) -> RunQueue | HallQueue:
    # Runs in this process share the cores the process started with, whatever count the script
    # run that queued them had set (resources.use_one_thread).
    return open_queue(folder, settings().ray_address, threads=TRAINING_THREADS, datasets=dataset)


def queue() -> RunQueue | HallQueue:
    """The queue of the checkpoint folder: one per server, every session's runs in it. Raises
    QueueError, saying why, while another process (a sweep) serves that folder's queue."""
    dataset("mnist")  # in the script run, where its spinner can show
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


def room() -> Classroom:
    """The classes and learners of the checkpoint folder, kept in its queue's store (a Classroom holds
    nothing but the queue, which is the one cached). Raises QueueError as ``queue`` does."""
    return Classroom(queue())


def owner() -> str:
    """This browser's learner token: its runs' owner, the same after a reload."""
    return identity.token()


def running() -> list[Run]:
    """The runs training now, oldest first."""
    return [run for run in all_runs() if run.running]


def followed() -> Run | None:
    """The run a page that follows "the run training now" shows: this browser's own, else the
    one that started first."""
    now = running()
    return next((run for run in now if run.owner == owner()), now[0] if now else None)


def who(run: Run) -> str:
    """The run's owner as a table shows it: "you", the name they joined their class under, a short
    tag that tells lone learners apart, or "command line"."""
    if run.owner == owner():
        return "you"
    if not run.owner:
        return "command line"
    return _name(str(checkpoint_dir().resolve()), run.owner) or f"learner {run.owner[:4]}"


def made_by() -> dict[str, str]:
    """{model name: who queued the run that makes it}, for the runs of the queue: a picker or the
    Board names them (a model no run made, a bundled one, has none)."""
    return {run.name: who(run) for run in all_runs()}


@st.cache_data(ttl=NAMES_TTL_S, show_spinner=False)
def _name(folder: str, token: str) -> str | None:
    """The name of the learner ``token`` (kept in ``folder``'s store), None for one who has not
    joined a class, for an owner that is no learner's token (a sweep's), or while the store
    cannot be read."""
    try:
        return room().name_of(token)
    except QueueError:
        return None
