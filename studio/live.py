"""A run as every session watching it sees it, made once per change and shared.

Every session on the Train page refreshes every few seconds. What a refresh shows of a run is the
same for all of them, so it is made once per published change: the snapshot itself (published at
most once per period, so sessions refreshing within that time see the same step and hit the same
cache entries), the loss figure and its JSON, the reconstruction PNG, the film's newest frame and
the model of the latest epoch (Inside).
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
from PIL import Image

from classroom.jobs import snapshot_model
from classroom.queue import Run
from studio import runs
from studio.figures import film_figure, loss_figure
from studio.films import first_epoch_curve, test_curve
from vae import film
from vae.checkpoint import Checkpoint
from vae.datasets import dataset_info
from vae.images import make_grid

LIVE_REFRESH_S = 2.0  # the Train page's progress line reruns this often (progress, the Stop button)
# A new step is published at most this often: refreshes in between show the same step.
LIVE_PERIOD_S = 2.0
# The live figures (loss curves, reconstructions, the film's newest frame) rerun and are renewed as
# often as the progress line for a few watchers, and every LIVE_FIGURES_S for a crowd: each refresh
# encodes and sends them to every watching session, tens of kB each.
LIVE_FIGURES_S = 6.0
LIVE_CROWD = 2  # more sessions than this watching (a learner, or a learner and a teacher): figures slow down
WATCHING_S = 10.0  # a session counts as watching for this long after its last live refresh
# The live loss chart's training curve keeps this many steps: a chart a third of the page wide shows
# no more, and every refresh of every session encodes and sends the figure.
LIVE_CURVE_POINTS = 300


class SharedFigure(go.Figure):
    """A built figure frozen as its JSON-ready dict: ``st.plotly_chart`` serialises ``to_dict()``,
    which here is the dict made once, with its arrays already typed-array strings, instead of a deep
    copy of every trace per session per refresh. Read-only: it is shared."""

    def __init__(self, figure: go.Figure):
        super().__init__()
        object.__setattr__(self, "frozen", json.loads(pio.to_json(figure, validate=False)))

    def to_dict(self) -> dict:
        return self.frozen

    def to_plotly_json(self) -> dict:
        return self.frozen


class LiveView(NamedTuple):
    """What a refresh of a run shows beyond its progress line, shared by every session."""

    curves: go.Figure | None  # a SharedFigure of the loss curves; None before the first step
    reconstructions: bytes | None  # the fixed test digits over their reconstructions, as a PNG
    epochs_done: int


class _Publisher:
    """A run's snapshot, renewed at most once per ``period`` seconds, and at once when its status
    changes (it starts, is stopped, ends)."""

    def __init__(self, queue, run_id: int, period: float):
        self.queue, self.run_id, self.period = queue, run_id, period
        self._lock = threading.Lock()
        self._snap, self._taken = queue.snapshot(run_id), time.monotonic()

    def snapshot(self, fresh: bool = False) -> Run:
        with self._lock:
            newest, now = self.queue.snapshot(self.run_id), time.monotonic()
            if fresh or now - self._taken >= self.period or newest.status != self._snap.status \
                    or newest.started_at != self._snap.started_at:
                if not _same_view(newest, self._snap):
                    self._snap = newest  # unchanged: keep the object, so that caches keyed on it hit
                self._taken = now
            return self._snap


def _same_view(a: Run, b: Run) -> bool:
    return (a.started_at, a.status, a.step, len(a.history.epochs), a.film and a.film.frames,
            a.message) == (b.started_at, b.status, b.step, len(b.history.epochs), b.film and b.film.frames,
                           b.message)


@st.cache_resource(show_spinner=False, max_entries=8)
def _publisher(_queue, queue_id: int, run_id: int, period: float) -> _Publisher:
    return _Publisher(_queue, run_id, period)


def snapshot(run_id: int, period: float | None = None, fresh: bool = False) -> Run:
    """Run ``run_id`` as every watching session sees it now: while it trains, renewed at most once
    per ``period`` (LIVE_PERIOD_S by default), or at once with ``fresh`` (a whole page run, which a
    user's action asked for, shows the latest). A queued or ended run is read as it is: it changes
    seldom, and an ended one is slim, where a publisher would keep its last live state (weights,
    film) in memory."""
    queue = runs.queue()
    run = queue.snapshot(run_id)
    if not run.running:
        return run
    return _publisher(queue, id(queue), run_id, LIVE_PERIOD_S if period is None else period).snapshot(fresh)


@st.cache_resource(show_spinner=False)
def _watchers() -> dict:
    """Browser session id -> time.monotonic() of its last live refresh."""
    return {}


def watching(session_id: str) -> None:
    """Count ``session_id`` as watching a run now."""
    _watchers()[session_id] = time.monotonic()


def figures_period() -> float:
    """How often the live figures refresh: with the progress line while at most LIVE_CROWD
    sessions watch, every LIVE_FIGURES_S for more."""
    now, seen = time.monotonic(), _watchers()
    for session_id, last in list(seen.items()):
        if now - last > WATCHING_S:
            seen.pop(session_id, None)
    return LIVE_FIGURES_S if len(seen) > LIVE_CROWD else LIVE_REFRESH_S


@st.cache_resource(show_spinner=False, max_entries=8)
def _view(run: tuple, step: int, epochs: int, status: str, _snap: Run) -> LiveView:
    history = _snap.history
    curves = (SharedFigure(loss_figure(history, fine_tune_from=_snap.config.fine_tune_start,
                                       max_points=LIVE_CURVE_POINTS))
              if history.steps else None)
    picture = None if _snap.reconstructions is None else _picture(run, len(history.epochs), _snap.reconstructions)
    return LiveView(curves, picture, len(history.epochs))


@st.cache_resource(show_spinner=False, max_entries=8)
def _picture(run: tuple, epochs: int, _reconstructions: np.ndarray) -> bytes:
    """The reconstruction grid as a PNG, made once per epoch (st.image sends bytes as they are)."""
    originals_and_reconstructions = _reconstructions.reshape(-1, *_reconstructions.shape[2:])  # [2n, C, H, W]
    grid = make_grid(originals_and_reconstructions, ncol=_reconstructions.shape[1], pad=2, scale=3)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    return buffer.getvalue()


def _run_key(snap: Run) -> tuple:
    """A run's start, which tells one of its starts (a resumed run starts again) from another."""
    return snap.id, snap.started_at


def view(snap: Run) -> LiveView:
    """The loss curves and reconstructions of ``snap``, built once per step and epoch for all
    sessions watching (``snap`` from ``snapshot``, so that they watch the same step)."""
    return _view(_run_key(snap), snap.step, len(snap.history.epochs), snap.status, snap)


@st.cache_resource(show_spinner=False, max_entries=8)
def _film_layout(run: tuple) -> list:
    """A running film's layout so far (one slot, replaced at each new frame): each new frame lays
    out only itself."""
    return [None]


@st.cache_resource(show_spinner=False, max_entries=8)
def _film(run: tuple, frames: int, epochs: int, _snap: Run) -> go.Figure:
    so_far = _film_layout(run)
    so_far[0] = film.film_layout(_snap.film, "pca", known=so_far[0])
    label_names = dataset_info(_snap.config.data).label_names  # a Ray run's dataset is not loaded here
    return SharedFigure(film_figure(_snap.film, so_far[0], label_names, test_curve(_snap.history), animate=False,
                                    first_epoch=first_epoch_curve(_snap.history)))


def film_figure_of(snap: Run) -> go.Figure:
    """A running run's newest film frame, built once per frame for all sessions watching."""
    return _film(_run_key(snap), snap.film.frames, len(snap.history.epochs), snap)


@st.cache_resource(show_spinner=False, max_entries=4)
def _checkpoint(run: tuple, epoch: int, _snap: Run) -> Checkpoint | None:
    return snapshot_model(_snap)


def checkpoint(snap: Run) -> Checkpoint | None:
    """A running run's model as its latest epoch ended, as a ``Checkpoint`` (None before the first
    ends), built once per epoch for every session watching."""
    return _checkpoint(_run_key(snap), snap.weights_epoch, snap)
