"""Lessons: where this learner is, and what they did, kept by the server under the browser's lasting
token (``studio.identity``) in the checkpoint folder's store (``classroom.classes``), so that a reload,
a closed tab or the teacher's view finds it. A lesson's steps are done by what the learner does in
the pages, which record it here (``record``); each step's check (``classroom.lessons.CHECKS``) reads
these events. The learner's answers to the steps' questions (``answer``, ``answers``), the numbers
the pages measured for their recap (``note``, ``noted``) and their place in a lesson (``place``,
``go``) are kept here too.

Each change is made to the learner as the server has them at that moment (a teacher's reset, another
tab's answer are kept) and saved at once; reads use the copy read at the start of the script run
(``begin_run``). Where the store cannot be used, the learner lives in this browser session alone.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import streamlit as st

from classroom import lessons as class_lessons
from classroom.classes import Class, ClassError, Learner
from classroom.lessons import LESSON_DIR
from classroom.progress import Note, Place, Progress
from classroom.queue import QueueError
from studio import identity, runs
from studio.resources import list_checkpoints
from studio.runs import room  # the server's classroom, for the pages that start and join classes

ME_KEY = "learner"  # session_state: this learner as last read from the server or saved (Learner)
CLASS_KEY = "learner_class"  # session_state: their class as last read from the server (Class or None)
BUNDLED_MODELS = ("default", "latent2d", "tutorial", "beta1", "beta4", "autoencoder")  # the files checkpoints/ ships


@st.cache_resource(show_spinner=False, ttl=10)
def lessons() -> tuple[dict, list[str]]:
    """(usable lessons by id, why each other lesson file was left out), read again every few
    seconds so that a teacher's edit shows without a restart."""
    return class_lessons.load_lessons(LESSON_DIR)


# ---------------------------------------------------------------- who, from the server


def begin_run() -> None:
    """At every script run's start: this learner and their class read from the server (a teacher's
    move, another tab's progress), and the browser asked to keep the learner's token."""
    identity.keep()
    refresh()


def refresh() -> None:
    """Read this learner and their class from the server again (after a change made to them
    elsewhere, e.g. joining a class); where the store cannot be used, keep this browser session's
    learner, in no class."""
    try:
        mine = room().learner(identity.token())
        mine_class = None if mine.class_id is None else _class_or_none(mine.class_id)
    except QueueError:
        mine = st.session_state.get(ME_KEY) or Learner(identity.token(), None, None, Progress(), time.time())
        mine_class = None
    st.session_state[ME_KEY], st.session_state[CLASS_KEY] = mine, mine_class


def _class_or_none(class_id: int) -> Class | None:
    """The learner's class, or None where the server no longer has it (its damaged record was set
    aside, which the sidebar's notices say): they go on as a lone learner."""
    try:
        return room().class_of(class_id)
    except ClassError:
        return None


def me() -> Learner:
    """This browser's learner, as read at this script run's start or last saved."""
    if ME_KEY not in st.session_state:
        refresh()
    return st.session_state[ME_KEY]


def my_class() -> Class | None:
    """The class this learner joined, as the server has it (never what the URL says)."""
    if CLASS_KEY not in st.session_state:
        refresh()
    return st.session_state[CLASS_KEY]


def save(progress: Progress) -> None:
    """Keep ``progress`` as this learner's: on the server where it can be, in this browser session in any case."""
    mine = me()
    saved = Learner(mine.token, mine.class_id, mine.name, progress, time.time())
    with contextlib.suppress(QueueError):
        saved = room().save(mine.token, progress)
    st.session_state[ME_KEY] = saved


def change(update) -> None:
    """Save ``update(progress)``, made to the learner's progress as the server has it now."""
    refresh()
    save(update(me().progress))


# ---------------------------------------------------------------- what they did


def record(event: str, detail=None) -> None:
    """Note that this learner did ``event`` (with ``detail``, e.g. the two models compared)."""
    change(lambda progress: progress.did(event, detail))


def step_done(lesson_id: str, step) -> bool:
    """Whether this learner has done what ``step`` (a ``classroom.lessons.Step``) asks since they started
    the lesson again (``restart``), or ever if they never did."""
    return me().progress.step_done(lesson_id, step)


def answer(lesson_id: str, step: int, option: int) -> None:
    """Note that this learner chose ``option`` (from 1) for the question of ``step`` (from 0)."""
    change(lambda progress: progress.answer(lesson_id, step, option))


def answers(lesson_id: str) -> dict[int, list[int]]:
    """{step (from 0): the options this learner chose for its question, in order} in one lesson: the
    first is their prediction, so whether it was right on the first try shows."""
    return {step: list(chosen) for step, chosen in me().progress.answers_of(lesson_id).items()}


def restart(lesson_id: str) -> None:
    """Start a lesson again: what the learner did before no longer ticks its steps, and its answers
    are forgotten (other lessons keep theirs)."""
    change(lambda progress: progress.restart(lesson_id))


def note(name: str, value: float, model: str) -> None:
    """Keep ``value`` (e.g. "gap": KL(q‖p(z|x)) of the learner's digit, in nats) for the recap; a page
    that shows the same number again writes nothing."""
    if noted().get(name) != Note(float(value), model):
        change(lambda progress: progress.note(name, value, model))


def noted() -> dict[str, Note]:
    """The numbers the pages kept for this learner, by name."""
    return dict(me().progress.notes)


# ---------------------------------------------------------------- where they are


def place() -> Place | None:
    """The lesson step this learner is at, or None out of any lesson."""
    return me().progress.place


def go(to: Place | None) -> None:
    """Put this learner at ``to`` (None: out of any lesson)."""
    change(lambda progress: progress.at(to))


def left_at(lesson_id: str) -> int:
    """The step (from 0) this learner was last at in a lesson: where it opens again."""
    return me().progress.left_at.get(lesson_id, 0)


def follow(moved: Class) -> None:
    """Note that this learner's panel followed the class's latest move (``moved.moved_at``)."""
    change(lambda progress: progress.followed(moved.moved_at))


# ---------------------------------------------------------------- a class


def class_mode() -> bool:
    """Whether this learner is in a class: the pages then offer what a beginner needs."""
    return my_class() is not None


def visible_checkpoints() -> list[Path]:
    """The models a picker offers: every file in the checkpoint folder, or in class mode the bundled
    models and the runs of the class's learners."""
    mine = my_class()
    if mine is None:
        return list_checkpoints()
    classmates = {learner.token for learner in room().learners(mine.id)}
    class_runs = {run.name for run in runs.all_runs() if run.owner in classmates}
    return [p for p in list_checkpoints() if p.stem in BUNDLED_MODELS or p.stem in class_runs]
