"""Lessons: where this learner is, and what they did. A lesson's steps are done by what the learner
does in the pages, which record it here (``record``); each step's check (``classroom.lessons.CHECKS``)
reads these events. The learner's answers to the steps' questions (``answer``, ``answers``) and the
numbers the pages measured for their recap (``note``, ``noted``) are kept here too, behind these few
functions, so that another store can replace the browser's state without the pages changing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from classroom import lessons as class_lessons
from classroom.lessons import LESSON_DIR
from studio import runs
from studio.resources import list_checkpoints

LESSON_KEY = "lesson"  # session_state: {"id": lesson id, "step": 0-based step} while a lesson is open
EVENTS_KEY = "lesson_events"  # session_state: Counter of (event, detail or None): what the learner did, how often
STARTS_KEY = "lesson_starts"  # session_state: {lesson id: EVENTS_KEY's Counter when the learner started it again}
ANSWERS_KEY = "lesson_answers"  # session_state: {(lesson id, 0-based step): [options chosen, from 1, in order]}
NOTES_KEY = "lesson_notes"  # session_state: {name: Note}, the learner's own numbers that a recap quotes
CLASS_KEY = "class_mode"  # session_state: True once the URL asked for class mode (?class=1)
BUNDLED_MODELS = ("default", "latent2d", "tutorial", "beta1", "beta4", "autoencoder")  # the files checkpoints/ ships


@st.cache_resource(show_spinner=False, ttl=10)
def lessons() -> tuple[dict, list[str]]:
    """(usable lessons by id, why each other lesson file was left out), read again every few
    seconds so that a teacher's edit shows without a restart."""
    return class_lessons.load_lessons(LESSON_DIR)


def record(event: str, detail=None) -> None:
    """Note that this learner did ``event`` (with ``detail``, e.g. the two models compared)."""
    st.session_state.setdefault(EVENTS_KEY, Counter())[(event, detail)] += 1


def step_done(lesson_id: str, step) -> bool:
    """Whether this learner has done what ``step`` (a ``classroom.lessons.Step``) asks since they started
    the lesson again (``restart``), or ever if they never did."""
    done = st.session_state.get(EVENTS_KEY, Counter()) - st.session_state.get(STARTS_KEY, {}).get(lesson_id, Counter())
    if step.check == "new_eps":
        return done[("new_eps", None)] >= step.times
    if step.check == "compare":
        return any(event == "compare" and set(step.models) <= set(pair) for event, pair in done)
    return any(event == step.check for event, _ in done)


def answer(lesson_id: str, step: int, option: int) -> None:
    """Note that this learner chose ``option`` (from 1) for the question of ``step`` (from 0)."""
    st.session_state.setdefault(ANSWERS_KEY, {}).setdefault((lesson_id, step), []).append(option)


def answers(lesson_id: str) -> dict[int, list[int]]:
    """{step (from 0): the options this learner chose for its question, in order} in one lesson: the
    first is their prediction, so whether it was right on the first try shows."""
    return {step: list(chosen) for (lesson, step), chosen in st.session_state.get(ANSWERS_KEY, {}).items()
            if lesson == lesson_id}


def restart(lesson_id: str) -> None:
    """Start a lesson again: what the learner did before no longer ticks its steps, and its answers
    are forgotten (other lessons keep theirs)."""
    st.session_state.setdefault(STARTS_KEY, {})[lesson_id] = Counter(st.session_state.get(EVENTS_KEY, Counter()))
    st.session_state[ANSWERS_KEY] = {key: chosen for key, chosen in st.session_state.get(ANSWERS_KEY, {}).items()
                                     if key[0] != lesson_id}


@dataclass(frozen=True)
class Note:
    """A number a page measured for this learner, and the model it was measured with."""
    value: float
    model: str  # the checkpoint's name


def note(name: str, value: float, model: str) -> None:
    """Keep ``value`` (e.g. "gap": KL(q‖p(z|x)) of the learner's digit, in nats) for the recap."""
    st.session_state.setdefault(NOTES_KEY, {})[name] = Note(float(value), model)


def noted() -> dict[str, Note]:
    """The numbers the pages kept for this learner, by name."""
    return dict(st.session_state.get(NOTES_KEY, {}))


def class_mode() -> bool:
    return bool(st.session_state.get(CLASS_KEY))


def visible_checkpoints() -> list[Path]:
    """The models a picker offers: every file in the checkpoint folder, or in class mode the bundled
    models and the class's own runs."""
    if not class_mode():
        return list_checkpoints()
    class_runs = {run.name for run in runs.all_runs()}
    return [p for p in list_checkpoints() if p.stem in BUNDLED_MODELS or p.stem in class_runs]
