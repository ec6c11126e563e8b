"""App-wide state shared by every page: the cached data and model, the active-model choice, the
server's one training job, the cached latent-space results the exploring pages share, and the
Home page's cached model summary.

Pages import this module and call ``vae/`` for everything else; nothing here does modelling.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
import torch
from PIL import Image

import vae
from vae import board, compare, explain, film, latent, neighbours, plots, samplers
from vae import lessons as vae_lessons
from vae.checkpoint import CheckpointError
from vae.data import default_data_dir
from vae.device import resolve_device
from vae.images import make_grid
from vae.jobs import JobSnapshot, ModelWorkGate, TrainingJob, snapshot_model
from vae.lessons import LESSON_DIR
from vae.plots import film_figure, loss_figure
from vae.summary import layer_table
from vae.train import CHECKPOINT_DIR, TrainConfig, TrainResult, train

DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
TSNE_CACHE = default_data_dir() / "tsne"  # t-SNE maps made before, kept across server restarts
ACTIVE_KEY = "active_checkpoint"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def list_checkpoints() -> list[Path]:
    """Model files in ``checkpoints/``, the bundled default first, then newest first."""
    files = [p for p in CHECKPOINT_DIR.glob("*.pt") if p.is_file()]
    files.sort(key=lambda p: (p != DEFAULT_CHECKPOINT, -p.stat().st_mtime))
    return files


# torch's thread count of this process before any script run lowered it: all cores, for training.
TRAINING_THREADS = torch.get_num_threads()


def use_one_thread() -> None:
    """Run torch on one thread in this script run (app.py calls it first thing in every run).

    A page's model work is a few passes of one image or a small batch, where a second OpenMP thread
    saves nothing but must meet the first at every operation: when the other core is busy (a
    training run, another session), every meeting waits for it, and one image's pass took 30-100 ms
    instead of under 1 ms (bench/page_latency.py). torch's count is per thread, and a new thread
    (each rerun runs on one) starts from the last count set in any thread; training sets its own
    (``training_job``)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@st.cache_resource(show_spinner=False)
def device() -> torch.device:
    return resolve_device("auto")


def device_label() -> str:
    """``CPU`` or ``CUDA (<GPU name>)``, for the sidebar."""
    d = device()
    return f"CUDA ({torch.cuda.get_device_name(d)})" if d.type == "cuda" else "CPU"


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist() -> vae.data.MNIST:
    return vae.load_mnist()


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _load_model(path: str, mtime_ns: int) -> vae.ConvVAE:
    """Keyed by file and modification time, so a retrained file is reloaded, an unchanged one never."""
    return vae.load_checkpoint(path, device=device())


def load_model(path: str | Path) -> vae.ConvVAE:
    """The cached model of ``path`` (raises CheckpointError with a readable message)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    return _load_model(str(path.resolve()), path.stat().st_mtime_ns)


def active_checkpoint() -> Path:
    """The checkpoint chosen in the sidebar (this browser session), else the bundled default."""
    chosen = st.session_state.get(ACTIVE_KEY)
    return Path(chosen) if chosen and Path(chosen).is_file() else DEFAULT_CHECKPOINT


def active_model() -> vae.ConvVAE:
    """The active model; on a bad file, shows the reason and stops the page (never a traceback)."""
    try:
        return load_model(active_checkpoint())
    except CheckpointError as e:
        st.error(f"The model could not be loaded: {e} Choose another model in the sidebar.")
        st.stop()


def _train_on_every_core(*args, **kwargs) -> TrainResult:
    """``vae.train.train`` in the job's thread on all cores, whatever count the script run that
    started the thread had set (see ``use_one_thread``)."""
    torch.set_num_threads(TRAINING_THREADS)
    return train(*args, **kwargs)


@st.cache_resource(show_spinner=False)
def training_job() -> TrainingJob:
    """One job per server: every browser session watches (and may stop) the same run."""
    return TrainingJob(train_fn=_train_on_every_core)


def new_checkpoint_path(name: str) -> Path:
    """Where a new model called ``name`` is saved; ValueError saying why if the name cannot be used."""
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "The name may use only letters, digits, '-' and '_' (1 to 64 characters), "
            f"got {name!r}."
        )
    path = CHECKPOINT_DIR / f"{name}.pt"
    if path.resolve().parent != CHECKPOINT_DIR.resolve():  # belt and braces: never leave the folder
        raise ValueError(f"The name {name!r} would save outside the checkpoint folder.")
    if path.exists():
        raise ValueError(f"A model named {name!r} already exists; choose another name.")
    return path


# ---------------------------------------------------------------- latent-space results
# Keyed by the model file and its mtime (``model_key``): a retrained file is recomputed, an unchanged
# one never is. Cached as resources (not copied per rerun), so treat them as read-only.

LAST_DRAWING_KEY = "last_drawing_latent"  # session_state: {"image", "mu", "logvar", "checkpoint"} from Draw


def model_key(model) -> tuple[str, int]:
    """(resolved path, mtime_ns) of the file ``model`` was loaded from."""
    path = model.checkpoint_path.resolve()
    return str(path), path.stat().st_mtime_ns


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_encodings(_model, key: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
    return latent.encode(_model, mnist().test_images)


def test_encodings(model) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances [10000, d] of the whole test set (a few seconds once)."""
    with st.spinner("Encoding the 10,000 test digits…", show_time=True):
        return _test_encodings(model, model_key(model))


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_negative_elbo(_model, key: tuple[str, int]) -> np.ndarray:
    return latent.negative_elbo(_model, mnist().test_images)


def test_negative_elbo(model) -> np.ndarray:
    """Per-image -ELBO [10000] of the test set, the reference for 'how typical is this image'."""
    with st.spinner("Scoring the 10,000 test digits (once per model)…", show_time=True):
        return _test_negative_elbo(model, model_key(model))


@st.cache_resource(show_spinner=False, max_entries=16)
def _projection(_model, key, size: int, method: str, perplexity: float, seed: int):
    indices = latent.test_subset(size)
    mu, _ = _test_encodings(_model, key)
    return indices, latent.project(mu[indices], method, perplexity=perplexity, seed=seed, cache_dir=TSNE_CACHE)


def projection(model, size: int, method: str, perplexity: float = 30.0, seed: int = 0):
    """(test indices [size], latent.Projection) of a fixed test subset; t-SNE runs once per
    model, subset and settings."""
    message = f"Projecting {size:,} test digits…"
    if method == "tsne":
        message = (
            f"Running t-SNE on {size:,} test digits. This takes about {round(3 + size * 0.0022)} s "
            "(longer while a model trains), once per model, subset and perplexity: the map is kept on disk."
        )
    test_encodings(model)  # its own spinner on a cold start
    with st.spinner(message, show_time=True):
        return _projection(model, model_key(model), size, method, float(perplexity), seed)


@st.cache_resource(show_spinner=False, max_entries=8)
def _manifold(_model, _proj, key, method: str, extent, points: int, side: int) -> np.ndarray:
    z = _proj.to_latents(latent.grid_points(*extent, side))
    return make_grid(latent.decode(_model, z), ncol=side, pad=0, scale=max(1, 840 // (28 * side)))


def manifold(model, proj: latent.Projection, side: int) -> np.ndarray:
    """A side x side image grid decoding an even grid over ``proj``'s range (top row = largest y),
    through the projection's exact inverse."""
    with st.spinner("Decoding the grid…"):
        return _manifold(model, proj, model_key(model), proj.method, proj.extent(), len(proj.coords), side)


# ---------------------------------------------------------------- which digit, and sampling where the data is
# The 60,000 training digits' means are kept on disk per model file (MEANS_CACHE); the vote's index,
# the mixture and the per-digit Gaussians are built from them once per model, in memory.

MEANS_CACHE = neighbours.default_cache_dir()
FIRST_DIGIT = 7  # the digit the Generate page samples until the user picks another


@st.cache_resource(show_spinner=False)
def _means_store() -> dict:
    """Training means by model_key: filled outside a cached function, so that the progress bar
    shows only while they are encoded."""
    return {}


_MEANS_LOCK = threading.Lock()  # one encoding of the training digits at a time: a second asker waits for it


def _training_means(model, data: vae.data.MNIST, progress=None) -> np.ndarray:
    store, key = _means_store(), model_key(model)
    with _MEANS_LOCK:
        if key not in store:
            means = neighbours.cached_means(model, data.train_images, MEANS_CACHE, progress)
            if len(store) >= 4:
                store.pop(next(iter(store)))
            store[key] = means
        return store[key]


def training_means(model) -> np.ndarray:
    """Posterior means [60000, d] of every training digit, from disk when this model file's are
    there, else encoded once (seconds on a CPU; bench/RESULTS.md) with a progress bar."""
    stored = _means_store().get(model_key(model))
    if stored is not None:
        return stored
    bar = st.progress(0.0, text="Encoding the 60,000 training digits (once per model, then kept on disk)…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Encoding the training digits: {done:,} of {total:,} "
                                        "(once per model, then kept on disk)")

    means = _training_means(model, mnist(), progress)
    bar.empty()
    return means


@st.cache_resource(show_spinner=False, max_entries=4)
def _digit_vote(_model, key: tuple[str, int], _means: np.ndarray, _labels: np.ndarray) -> neighbours.DigitVote:
    return neighbours.DigitVote(_means, _labels)


def digit_vote(model) -> neighbours.DigitVote:
    """The k-NN vote among the training digits' means: what the model takes a latent for."""
    means = training_means(model)
    with st.spinner("Indexing the training digits…"):
        return _digit_vote(model, model_key(model), means, mnist().train_labels.numpy())


@st.cache_resource(show_spinner=False, max_entries=4)
def _own_means(_model, key: tuple[str, int], _means: np.ndarray, _labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return samplers.own_training_means(_model, _means, _labels)


def own_training_means(model) -> tuple[np.ndarray, np.ndarray]:
    """(means, labels) of the training digits this model trained on, which the samplers fit."""
    return _own_means(model, model_key(model), training_means(model), mnist().train_labels.numpy())


@st.cache_resource(show_spinner=False, max_entries=4)
def _mixture(_model, key: tuple[str, int], _means: np.ndarray):
    return samplers.fit_mixture(_means)


def mixture(model):
    """The Gaussian mixture over this model's training means (a few seconds, once per model)."""
    means, _ = own_training_means(model)
    with st.spinner(f"Fitting a {samplers.MIXTURE_COMPONENTS}-component Gaussian mixture to "
                    f"{len(means):,} training means (once per model)…", show_time=True):
        return _mixture(model, model_key(model), means)


@st.cache_resource(show_spinner=False, max_entries=40)
def _digit_gaussian(_model, key: tuple[str, int], digit: int, _means, _labels) -> samplers.DigitGaussian:
    return samplers.fit_digit(_means, _labels, digit)


def digit_gaussian(model, digit: int) -> samplers.DigitGaussian:
    """The full-covariance Gaussian of one digit's training means; raises TooFewExamplesError."""
    means, labels = own_training_means(model)
    return _digit_gaussian(model, model_key(model), digit, means, labels)


def sampler_latents(model, sampler: str, n: int, seed: int, digit: int | None = None) -> np.ndarray:
    """n latents from "prior", "mixture" or "digit" (``digit`` given), the same for the same seed."""
    if sampler == "prior":
        return latent.prior_samples(n, model.latent_dim, seed=seed)
    if sampler == "mixture":
        return samplers.mixture_samples(mixture(model), n, seed=seed)
    return digit_gaussian(model, digit).sample(n, seed=seed)


@st.cache_resource(show_spinner=False, max_entries=64)
def _quality(_model, key: tuple[str, int], sampler: str, digit: int | None, _z, _vote) -> samplers.SampleQuality:
    return samplers.sample_quality(_model, _vote, _z)


def sample_quality(model, sampler: str, digit: int | None = None) -> samplers.SampleQuality:
    """What the vote makes of QUALITY_SAMPLES decoded samples of a sampler (seed 0), once per model."""
    z = sampler_latents(model, sampler, samplers.QUALITY_SAMPLES, seed=0, digit=digit)
    vote = digit_vote(model)
    with st.spinner(f"Judging {samplers.QUALITY_SAMPLES:,} samples…"):
        return _quality(model, model_key(model), sampler, digit, z, vote)


def _prepare(model, data: vae.data.MNIST) -> None:
    """What ``warm_up`` fills, in the order the pages first need it (``data``: passed in, since a
    cached function's spinner needs a script run, and this thread has none)."""
    torch.set_num_threads(1)  # as a page's work (see use_one_thread): the other core trains
    key, labels = model_key(model), data.train_labels.numpy()
    means = _training_means(model, data)
    vote = _digit_vote(model, key, means, labels)
    own, own_labels = _own_means(model, key, means, labels)
    n = samplers.QUALITY_SAMPLES
    shown = [("prior", None, latent.prior_samples(n, model.latent_dim, seed=0)),
             ("mixture", None, samplers.mixture_samples(_mixture(model, key, own), n, seed=0))]
    with contextlib.suppress(samplers.TooFewExamplesError):
        gaussian = _digit_gaussian(model, key, FIRST_DIGIT, own, own_labels)
        shown.append(("digit", FIRST_DIGIT, gaussian.sample(n, seed=0)))
    for sampler, digit, z in shown:  # the latents sample_quality draws: the same seed
        _quality(model, key, sampler, digit, z, vote)


# Off in the tests: each loads its own copy of the model, which would be warmed again, seconds each.
WARM_UP = True


@st.cache_resource(show_spinner=False, max_entries=4)
def _warm_up(_model, key: tuple[str, int]) -> threading.Thread:
    thread = threading.Thread(target=_prepare, args=(_model, mnist()), name=f"warm-up {Path(key[0]).stem}",
                              daemon=True)
    thread.start()
    return thread


def warm_up(model) -> threading.Thread | None:
    """Fill the model's slow caches (the training digits' means, the vote's index, the mixture and
    the samplers' verdicts; seconds of CPU) on a thread of their own, once per model. A class's
    first visit to Draw or Generate then finds them ready, instead of holding one of the page
    queue's two places while every other session waits behind it. Any page that comes first
    waits for the same computation, not a second one (the caches compute each key once). None when
    WARM_UP is off."""
    return _warm_up(model, model_key(model)) if WARM_UP else None


# ---------------------------------------------------------------- the Home page's model summary
# Also keyed by ``model_key``: built once per model file, not on every visit to Home.


@st.cache_resource(show_spinner=False, max_entries=8)
def _loss_curves(_model, key: tuple[str, int]) -> go.Figure:
    return loss_figure(_model.history, fine_tune_from=TrainConfig.from_dict(_model.train_config).fine_tune_start)


def loss_curves(model) -> go.Figure:
    """The figure of ``model``'s training history (building it takes 100+ ms, longer than a page
    switch may)."""
    return _loss_curves(model, model_key(model))


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(_model, key: tuple[str, int]) -> list[dict]:
    return layer_table(_model)


def layers(model) -> list[dict]:
    """``vae.summary.layer_table`` of ``model`` (a forward pass with hooks), read-only."""
    return _layers(model, model_key(model))


# ---------------------------------------------------------------- the training film
# A model's film figures are keyed by ``model_key`` too; the running job's are keyed by the run and
# its frame count, so every session watching a run shares one figure per new frame.


def active_units(model) -> int:
    """Latent dimensions the model uses: its film's frame of the kept epoch, else measured on the
    test set's encodings (``vae.film.active_units``)."""
    if model.film is not None:
        return film.kept_active_units(model)
    return film.active_units(test_encodings(model)[0])


def test_curve(history: dict) -> list[tuple[float, float]]:
    """(epoch, test -ELBO) of a training history, for the film's curve."""
    epochs, _, loss = compare.elbo_curve(history)
    return list(zip(epochs.tolist(), loss.tolist()))


FILM_TSNE_CACHE = TSNE_CACHE  # the films' t-SNE maps, beside the Latent map's


@st.cache_resource(show_spinner=False, max_entries=8)
def _film_layout(_model, key: tuple[str, int], method: str = "pca") -> np.ndarray:
    return film.film_layout(_model.film, method, cache_dir=FILM_TSNE_CACHE)


def film_layout_ready(model, method: str) -> bool:
    """Whether ``model``'s film can be shown in ``method``'s layout at once (PCA always; t-SNE when
    stored in the file or kept on disk)."""
    return method != "tsne" or model.latent_dim == 2 or film.stored_tsne_layout(model.film, FILM_TSNE_CACHE) is not None


def film_layout(model, method: str) -> np.ndarray:
    """``model``'s film laid out by ``method``. A t-SNE map not made before is made first, with a
    progress bar (tens of seconds, once per model), and kept on disk, where the cache reads it."""
    if not film_layout_ready(model, method):
        bar = st.progress(0.0, text="Laying out the film with t-SNE (once per model, then kept on disk)…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Laying out the film with t-SNE: frame {done} of {total} "
                                            "(once per model, then kept on disk)")

        film.tsne_layout(model.film, FILM_TSNE_CACHE, progress)
        bar.empty()
    return _film_layout(model, model_key(model), method)


@st.cache_resource(show_spinner=False, max_entries=8)
def _film_agreement(_model, key: tuple[str, int], method: str) -> tuple[np.ndarray, np.ndarray]:
    labels = _model.film.labels
    return (film.neighbour_agreement(_model.film.means, labels),
            film.neighbour_agreement(_film_layout(_model, key, method), labels))


def film_agreement(model, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the share of the film's digits whose nearest neighbours share their label: in
    the latent space and on ``method``'s map (``vae.film.neighbour_agreement``); after
    ``film_layout``, which makes a t-SNE map with its progress bar."""
    return _film_agreement(model, model_key(model), method)


@st.cache_resource(show_spinner=False, max_entries=32)
def _film_player(_model, key: tuple[str, int], start: int, method: str) -> go.Figure:
    return film_figure(_model.film, _film_layout(_model, key, method), test_curve(_model.history), start=start,
                       method=method, agreement=_film_agreement(_model, key, method))


def film_player_figure(model, start: int, method: str = "pca") -> go.Figure:
    """The animated film of ``model`` (which has one) in ``method``'s layout, opening at frame
    ``start``; after ``film_layout``, as ``film_agreement``."""
    with st.spinner("Building the film…"):
        return _film_player(model, model_key(model), start, method)


@st.cache_resource(show_spinner=False)
def _live_layouts() -> dict:
    """The running film's layout so far, by run (its start time): each new frame lays out only itself."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=4)
def _live_film(run: float, frames: int, epochs: int, _snap: JobSnapshot) -> go.Figure:
    layouts = _live_layouts()
    layout = film.film_layout(_snap.film, "pca", known=layouts.get(run))
    layouts.clear()
    layouts[run] = layout
    return SharedFigure(film_figure(_snap.film, layout, test_curve(_snap.history), animate=False))


def live_film_figure(snap: JobSnapshot) -> go.Figure:
    """The running job's newest film frame, built once per frame for all sessions watching."""
    return _live_film(snap.started_at, snap.film.frames, len(snap.history["epochs"]), snap)


# ---------------------------------------------------------------- the live run, shared
# Every session on the Train page refreshes every few seconds. What a refresh shows of the run is
# the same for all of them, so it is made once per published change and shared: the snapshot itself
# (published at most once per period, so sessions refreshing within that time see the same step and
# hit the same cache entries), the loss figure and its JSON, the reconstruction PNG.

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
    """What a refresh of the running job shows beyond its progress line, shared by every session."""

    curves: go.Figure | None  # a SharedFigure of the loss curves; None before the first step
    reconstructions: bytes | None  # the fixed test digits over their reconstructions, as a PNG
    epochs_done: int


class _Publisher:
    """The job's snapshot, renewed at most once per ``period`` seconds, and at once when the run's
    status changes (it starts, is stopped, ends)."""

    def __init__(self, job: TrainingJob, period: float):
        self.job, self.period = job, period
        self._lock = threading.Lock()
        self._snap, self._taken = job.snapshot(), time.monotonic()

    def snapshot(self, fresh: bool = False) -> JobSnapshot:
        with self._lock:
            newest, now = self.job.snapshot(), time.monotonic()
            if fresh or now - self._taken >= self.period or newest.status != self._snap.status \
                    or newest.started_at != self._snap.started_at:
                if not _same_view(newest, self._snap):
                    self._snap = newest  # unchanged: keep the object, so that caches keyed on it hit
                self._taken = now
            return self._snap


def _same_view(a: JobSnapshot, b: JobSnapshot) -> bool:
    return (a.started_at, a.status, a.step, len(a.history["epochs"]), a.film and a.film.frames,
            a.message) == (b.started_at, b.status, b.step, len(b.history["epochs"]), b.film and b.film.frames,
                           b.message)


@st.cache_resource(show_spinner=False)
def _publisher(_job: TrainingJob, job_id: int, period: float) -> _Publisher:
    return _Publisher(_job, period)


def live_snapshot(period: float | None = None, fresh: bool = False) -> JobSnapshot:
    """The server's training job as every watching session sees it now, renewed at most once per
    ``period`` (LIVE_PERIOD_S by default); ``fresh``: publish its newest state first (a whole
    page run, which a user's action asked for, shows the latest)."""
    job = training_job()
    return _publisher(job, id(job), LIVE_PERIOD_S if period is None else period).snapshot(fresh)


@st.cache_resource(show_spinner=False)
def _watchers() -> dict:
    """Browser session id -> time.monotonic() of its last live refresh."""
    return {}


def watching(session_id: str) -> None:
    """Count ``session_id`` as watching the run now."""
    _watchers()[session_id] = time.monotonic()


def live_figures_period() -> float:
    """How often the live figures refresh: with the progress line while at most LIVE_CROWD
    sessions watch, every LIVE_FIGURES_S for more."""
    now, seen = time.monotonic(), _watchers()
    for session_id, last in list(seen.items()):
        if now - last > WATCHING_S:
            seen.pop(session_id, None)
    return LIVE_FIGURES_S if len(seen) > LIVE_CROWD else LIVE_REFRESH_S


@st.cache_resource(show_spinner=False, max_entries=4)
def _live_view(run: float, step: int, epochs: int, status: str, _snap: JobSnapshot) -> LiveView:
    history = _snap.history
    curves = (SharedFigure(loss_figure(history, fine_tune_from=_snap.config.fine_tune_start,
                                       max_points=LIVE_CURVE_POINTS))
              if history["steps"] else None)
    picture = None if _snap.reconstructions is None else _live_picture(run, len(history["epochs"]),
                                                                          _snap.reconstructions)
    return LiveView(curves, picture, len(history["epochs"]))


@st.cache_resource(show_spinner=False, max_entries=4)
def _live_picture(run: float, epochs: int, _reconstructions: np.ndarray) -> bytes:
    """The reconstruction grid as a PNG, made once per epoch (st.image sends bytes as they are)."""
    grid = make_grid(_reconstructions.reshape(-1, 28, 28), ncol=10, pad=2, scale=3)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    return buffer.getvalue()


def live_view(snap: JobSnapshot) -> LiveView:
    """The loss curves and reconstructions of ``snap``, built once per step and epoch for all
    sessions watching (``snap`` from ``live_snapshot``, so that they watch the same step)."""
    return _live_view(snap.started_at, snap.step, len(snap.history["epochs"]), snap.status, snap)


# ---------------------------------------------------------------- page model work while a run trains
# A page's model work waits for a slot while the job trains on the CPU: the run holds the cores, and
# a queue served in order answers sooner, and says so, than every session's work sharing them at once.

MODEL_WORK_SLOTS = 2  # page script runs doing model work at once while a run trains
WAIT_NOTICE_S = 2.0  # a page that has waited this long for a slot says why
WAIT_POLL_S = 0.5  # then it renews its notice, and looks again, this often


def _training_on_cpu() -> bool:
    return device().type == "cpu" and training_job().snapshot().running


@st.cache_resource(show_spinner=False)
def model_gate() -> ModelWorkGate:
    return ModelWorkGate(MODEL_WORK_SLOTS, _training_on_cpu)


@contextlib.contextmanager
def model_work():
    """Around a page's model work: while the job trains on the CPU, wait for one of the gate's
    slots; a wait of more than ``WAIT_NOTICE_S`` says why, and how long it has lasted. The notice is
    renewed every WAIT_POLL_S: each renewal lets Streamlit end this run for a newer one (a click,
    another page), and a run that ends meanwhile ends the wait."""
    gate = model_gate()
    started = time.monotonic()
    taken = gate.acquire(timeout=WAIT_NOTICE_S)
    if taken is False:
        notice = st.empty()
        while taken is False:
            wait_notice(notice, time.monotonic() - started, gate.waiting + 1)
            taken = gate.acquire(timeout=WAIT_POLL_S)
        notice.empty()
    try:
        yield
    finally:
        if taken:
            gate.release()


def wait_notice(notice, waited_s: float, queued: int) -> None:
    notice.info(f"Waiting for the training run to free the CPU… {waited_s:.0f} s so far; {queued} pages in "
                "the queue, yours included.", icon=":material/hourglass_top:")


# ---------------------------------------------------------------- two models side by side

IW_CACHE = default_data_dir() / "iw"  # -log p(x) estimates measured in the app, by model file hash
COMPARE_DIGITS = 1000  # test digits on each Compare map


@st.cache_resource(show_spinner=False, max_entries=8)
def _compare_map(_model, key: tuple[str, int]):
    method = "raw" if _model.latent_dim == 2 else "pca"
    indices, proj = _projection(_model, key, COMPARE_DIGITS, method, 30.0, 0)
    return indices, proj, mnist().test_labels.numpy()[indices]


def compare_map(model):
    """(test indices, latent.Projection, labels) of the Compare page's map of ``model``: raw for a 2-D
    latent, else PCA."""
    test_encodings(model)
    with st.spinner("Projecting the test digits…"):
        return _compare_map(model, model_key(model))


@st.cache_resource(show_spinner=False, max_entries=64)
def _compare_map_figure(_model, key: tuple[str, int], marked: int | None) -> go.Figure:
    indices, proj, labels = _compare_map(_model, key)
    titles = ("z₁", "z₂") if proj.method == "raw" else ("PCA 1", "PCA 2")
    return plots.digits_map_figure(proj.coords, labels, indices, marked, titles)


def compare_map_figure(model, marked: int | None) -> go.Figure:
    """``model``'s Compare map with the test digit ``marked`` ringed."""
    compare_map(model)
    return _compare_map_figure(model, model_key(model), marked)


@st.cache_resource(show_spinner=False, max_entries=8)
def _lockstep_film(_model_a, _model_b, key_a, key_b, method: str) -> go.Figure:
    names = _model_a.checkpoint_path.stem, _model_b.checkpoint_path.stem
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    layouts = (_film_layout(_model_a, key_a, method), _film_layout(_model_b, key_b, method))
    return plots.lockstep_film_figure(dict(zip(names, (_model_a.film, _model_b.film))), dict(zip(names, layouts)),
                                      method)


def lockstep_film_figure(model_a, model_b) -> go.Figure:
    """Both models' films on one clock (both have films), both in the t-SNE layout where the
    clusters show if both have one ready, else both in PCA's."""
    method = "tsne" if all(film_layout_ready(m, "tsne") for m in (model_a, model_b)) else "pca"
    with st.spinner("Building both films…"):
        return _lockstep_film(model_a, model_b, model_key(model_a), model_key(model_b), method)


# ---------------------------------------------------------------- one digit through the model (Inside)
# Keyed like the other per-model results, and for the run training now by the run and the epoch
# whose weights it published, so a page refresh that finds no new epoch recomputes nothing.

MAP_PICK_KEY = "map_picked_test"  # session_state: the test digit last clicked on the Latent map


@st.cache_resource(show_spinner=False, max_entries=64)
def _explanation(_model, key: tuple, image_key: str, seed: int, _image: np.ndarray) -> explain.Explanation:
    return explain.explain(_model, _image, seed)


def explanation(model, key: tuple, image: np.ndarray, seed: int) -> explain.Explanation:
    """``vae.explain.explain`` of ``image`` through ``model`` (cached under ``key``) with ε's ``seed``."""
    image_key = hashlib.sha1(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()
    return _explanation(model, key, image_key, seed, image)


@st.cache_resource(show_spinner=False, max_entries=8)
def code(_model, key: tuple) -> dict[str, str]:
    """The code behind each step of a model's pass (cached under ``key``), read from the running code."""
    return explain.source_of(_model)


@st.cache_resource(show_spinner=False, max_entries=8)
def _dimension_usage(_model, key: tuple, _film) -> tuple[np.ndarray, np.ndarray]:
    if _film is not None:
        frame = _film.frame_at(_model.metrics.get("epoch", np.inf)) if hasattr(_model, "metrics") else -1
        return _film.kl_per_dim[frame], film.used_dimensions(_film.means[frame])
    mu, logvar = _test_encodings(_model, key)
    kl = np.zeros(mu.shape[1]) if logvar is None else latent.kl_per_dimension(mu, logvar)
    return kl, film.used_dimensions(mu)


def dimension_usage(model, key: tuple, run_film=None) -> tuple[np.ndarray, np.ndarray]:
    """(KL [d], used [d]) of ``model``'s latent dimensions over many digits: its film's kept frame
    (``run_film``'s newest for the run training now), else the test set's encodings."""
    if run_film is None and model.film is None:
        test_encodings(model)  # its spinner on a cold start
    return _dimension_usage(model, key, run_film if run_film is not None else model.film)


@st.cache_resource(show_spinner=False, max_entries=2)
def _run_model(run: float, epoch: int, _snap: JobSnapshot):
    return snapshot_model(_snap)


def run_model(snap: JobSnapshot):
    """The running job's model as its latest epoch ended (None before the first ends), built once
    per epoch for every session watching; its cache key is ("run", start, epoch)."""
    return _run_model(snap.started_at, snap.weights_epoch, snap)


# ---------------------------------------------------------------- lessons: where this learner is, and what they did
# A lesson's steps are done by what the learner does in the pages, which record it here
# (``record``); each step's check (``vae.lessons.CHECKS``) reads these events.

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
    return [p for p in list_checkpoints()
            if not class_mode() or p.stem in BUNDLED_MODELS or p.stem in class_runs()]


@st.cache_resource(show_spinner=False)
def class_runs() -> set[str]:
    """Names of the models trained from the Train page since the server started: with the bundled
    ones, what class mode's model picker lists."""
    return set()


# ---------------------------------------------------------------- the class's rate-distortion board


@st.cache_resource(show_spinner=False, max_entries=4)
def _board(files: tuple[tuple[str, int], ...]):
    return board.board([Path(path) for path, _ in files])


def board_points():
    """(every readable VAE's point in the checkpoint folder, why each unreadable file was left out),
    read again only when a file is added or changed."""
    return _board(tuple((str(p), p.stat().st_mtime_ns) for p in list_checkpoints()))
