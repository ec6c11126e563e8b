"""Lessons: where this learner is, and what they did. A lesson's steps are done by what the learner
does in the pages, which record it here (``record``); each step's check (``vae.lessons.CHECKS``)
reads these events."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import runs
from studio.resources import list_checkpoints
from vae import lessons as vae_lessons
from vae.lessons import LESSON_DIR

LESSON_KEY = "lesson"  # session_state: {"id": lesson id, "step": 0-based step} while a lesson is open
EVENTS_KEY = "lesson_events"  # session_state: {event: count, or the set of its details}
CLASS_KEY = "class_mode"  # session_state: True once the URL asked for class mode (?class=1)
BUNDLED_MODELS = ("default", "latent2d", "tutorial", "beta4", "autoencoder")  # the files checkpoints/ ships


@st.cache_resource(show_spinner=False, ttl=10)
def lessons() -> tuple[dict, list[str]]:
    """(usable lessons by id, why each other lesson file was left out), read again every few
    seconds so that a teacher's edit shows without a restart."""
    return vae_lessons.load_lessons(LESSON_DIR)


def record(event: str, detail=None) -> None:
    """Note that this learner did ``event`` (with ``detail``, e.g. the two models compared)."""
    events = st.session_state.setdefault(EVENTS_KEY, {})
    if detail is None:
        events[event] = events.get(event, 0) + 1
    else:
        events.setdefault(event, set()).add(detail)


def step_done(step) -> bool:
    """Whether this learner has done what ``step`` (a ``vae.lessons.Step``) asks."""
    events = st.session_state.get(EVENTS_KEY, {})
    if step.check == "new_eps":
        return events.get("new_eps", 0) >= step.times
    if step.check == "compare":
        return any(set(step.models) <= set(pair) for pair in events.get("compare", ()))
    return bool(events.get(step.check))


def class_mode() -> bool:
    return bool(st.session_state.get(CLASS_KEY))


def visible_checkpoints() -> list[Path]:
    """The models a picker offers: every file in the checkpoint folder, or in class mode the bundled
    models and the class's own runs."""
    if not class_mode():
        return list_checkpoints()
    class_runs = {run.name for run in runs.all_runs()}
    return [p for p in list_checkpoints() if p.stem in BUNDLED_MODELS or p.stem in class_runs]
