"""What the pages derive from a model, computed once per model file and shared by every session:
the test set's encodings and scores, projections and the decoded grid, the training digits'
means with the vote and the samplers fitted to them, the summary Home shows, and one digit's
pass through the model (Inside). The modelling is in ``vae``; this module caches and says so.

Cached results are shared, not copied per rerun: treat them as read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import threading
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from classroom.jobs import SNAPSHOT_KEY_PREFIX
from studio.figures import (
    bounds_figure,
    digits_map_figure,
    latent_overview_figure,
    loss_figure,
    posterior_plane_figure,
    sigma_scan_figure,
)
from studio.resources import checkpoint_dir, data_of, default_checkpoint, load, per_model
from vae import explain, film, latent, neighbours, posterior, samplers
from vae.checkpoint import Checkpoint, CheckpointError
from vae.files import kept_arrays
from vae.images import make_grid
from vae.settings import settings
from vae.summary import layer_table

LAST_DRAWING_KEY = "last_drawing_latent"  # session_state: {"image", "mu", "logvar", "checkpoint" (its key)} from Draw
MAP_PICK_KEY = "map_picked_test"  # session_state: the test digit last clicked on the Latent map
FIRST_DIGIT = 7  # the digit the Generate page samples until the user picks another
COMPARE_DIGITS = 1000  # test digits on each Compare map


def last_drawing(ckpt: Checkpoint) -> dict | None:
    """Draw's last drawing or upload (``LAST_DRAWING_KEY``) if ``ckpt`` can encode it: one made for a
    model of another image form cannot be. None before any."""
    drawing = st.session_state.get(LAST_DRAWING_KEY)
    return drawing if drawing is not None and drawing["image"].shape == ckpt.dataset.image_shape else None


def tsne_cache() -> Path:
    """t-SNE maps made before (the Latent map's and the films'), kept across server restarts."""
    return settings().data_dir / "tsne"


def iw_cache() -> Path:
    """-log p(x) estimates measured in the app, by model file hash."""
    return settings().data_dir / "iw"


def test_set_cache() -> Path:
    """The test set's encodings and scores, by model file hash, kept across server restarts."""
    return settings().data_dir / "test"


# ---------------------------------------------------------------- the test set in the latent space


def _kept_for_test_set(ckpt: Checkpoint, name: str, shapes: dict, make) -> dict[str, np.ndarray]:
    """``vae.files.kept_arrays`` of a model file on the test set (seconds of CPU once per file); a
    run's epoch (``classroom.jobs.snapshot_model``) only in memory, or a class following runs would fill
    the disk with one file per epoch."""
    key = f"{ckpt.key}-{neighbours.images_digest(data_of(ckpt).test_images)}"
    path = None if ckpt.key.startswith(SNAPSHOT_KEY_PREFIX) else test_set_cache() / f"{name}-{key}.npz"
    return kept_arrays(path, key, shapes, make)


@per_model(max_entries=4, spinner="Encoding the 10,000 test digits…")
def test_encodings(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means and log-variances [10000, d] of the whole test set (an autoencoder's codes
    and None): a few seconds once per model file, then read from disk."""
    images, variational = data_of(ckpt).test_images, ckpt.config.variational
    names = ("mu", "logvar") if variational else ("mu",)
    kept = _kept_for_test_set(ckpt, "encodings", {name: (len(images), ckpt.config.latent_dim) for name in names},
                              lambda: dict(zip(names, latent.encode(ckpt.model, images))))
    return kept["mu"], kept["logvar"] if variational else None


@per_model(max_entries=4, spinner="Scoring the 10,000 test digits (once per model)…")
def test_negative_elbo(ckpt: Checkpoint) -> np.ndarray:
    """Per-image -ELBO [10000] of the test set, the reference for 'how typical is this image': a
    few seconds once per model file, then read from disk."""
    images = data_of(ckpt).test_images
    return _kept_for_test_set(ckpt, "elbo", {"elbo": (len(images),)},
                              lambda: {"elbo": latent.negative_elbo(ckpt.model, images)})["elbo"]


@per_model(max_entries=16)
def _projection(ckpt: Checkpoint, size: int, method: str, perplexity: float, seed: int):
    indices = latent.test_subset(size, len(data_of(ckpt).test_images))
    mu, _ = test_encodings(ckpt)
    return indices, latent.project(mu[indices], method, perplexity=perplexity, seed=seed, cache_dir=tsne_cache())


def projection(ckpt: Checkpoint, size: int, method: str, perplexity: float = 30.0, seed: int = 0):
    """(test indices [size], latent.Projection) of a fixed test subset; t-SNE runs once per
    model, subset and settings."""
    message = f"Projecting {size:,} test digits…"
    if method == "tsne":
        message = (
            f"Running t-SNE on {size:,} test digits. This takes about {round(3 + size * 0.0022)} s "
            "(longer while a model trains), once per model, subset and perplexity: the map is kept on disk."
        )
    test_encodings(ckpt)  # its own spinner on a cold start
    with st.spinner(message, show_time=True):
        return _projection(ckpt, size, method, float(perplexity), seed)


@st.cache_resource(show_spinner="Decoding the grid…", max_entries=8)
def _manifold(_ckpt: Checkpoint, _proj, key: str, method: str, extent, points: int, side: int) -> np.ndarray:
    z = _proj.to_latents(latent.grid_points(*extent, side))
    return make_grid(latent.decode(_ckpt.model, z), ncol=side, pad=0, scale=max(1, 840 // (28 * side)))


def manifold(ckpt: Checkpoint, proj: latent.Projection, side: int) -> np.ndarray:
    """A side x side image grid decoding an even grid over ``proj``'s range (top row = largest y),
    through the projection's exact inverse."""
    return _manifold(ckpt, proj, ckpt.key, proj.method, proj.extent(), len(proj.coords), side)


# ---------------------------------------------------------------- which digit, and sampling where the data is
# The 60,000 training digits' means are kept on disk per model file; the vote's index, the mixture
# and the per-digit Gaussians are built from them once per model, in memory.


class _Once:
    """A value made by the first caller of ``get``, with that caller's way of showing progress; a
    caller meanwhile waits for it, rather than making it again."""

    def __init__(self):
        self._lock = threading.Lock()
        self.value = None

    def get(self, make):
        with self._lock:
            if self.value is None:
                self.value = make()
            return self.value


@per_model(max_entries=4)
def _means_of(ckpt: Checkpoint) -> _Once:
    """The training means' slot for a model file: filled outside a cached function, so that the
    progress bar shows only while they are encoded."""
    return _Once()


def training_means(ckpt: Checkpoint) -> np.ndarray:
    """Posterior means [60000, d] of every training digit, from disk when this model file's are
    there, else encoded once (seconds on a CPU; bench/RESULTS.md) with a progress bar."""
    slot = _means_of(ckpt)
    if slot.value is not None or get_script_run_ctx(suppress_warning=True) is None:  # the warm-up thread: no bar
        return slot.get(lambda: neighbours.cached_means(ckpt, data_of(ckpt).train_images,
                                                        neighbours.default_cache_dir()))
    bar = st.progress(0.0, text="Encoding the 60,000 training digits (once per model, then kept on disk)…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Encoding the training digits: {done:,} of {total:,} "
                                        "(once per model, then kept on disk)")

    means = slot.get(lambda: neighbours.cached_means(ckpt, data_of(ckpt).train_images, neighbours.default_cache_dir(),
                                                      progress))
    bar.empty()
    return means


@per_model(max_entries=4, spinner="Indexing the training digits…")
def digit_vote(ckpt: Checkpoint) -> neighbours.DigitVote:
    """The k-NN vote among the training digits' means: what the model takes a latent for."""
    return neighbours.DigitVote(training_means(ckpt), data_of(ckpt).train_labels.numpy(), ckpt.dataset.label_names)


@per_model(max_entries=4)
def own_training_means(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """(means, labels) of the training digits this model trained on, which the samplers fit."""
    return samplers.own_training_means(ckpt, training_means(ckpt), data_of(ckpt).train_labels.numpy())


@per_model(max_entries=4, spinner=f"Fitting a {samplers.MIXTURE_COMPONENTS}-component Gaussian mixture to the "
                                  "training means (once per model)…")
def mixture(ckpt: Checkpoint):
    """The Gaussian mixture over this model's training means (a few seconds, once per model)."""
    return samplers.fit_mixture(own_training_means(ckpt)[0])


@per_model(max_entries=40)
def digit_gaussian(ckpt: Checkpoint, digit: int) -> samplers.DigitGaussian:
    """The full-covariance Gaussian of one digit's training means; raises TooFewExamplesError."""
    means, labels = own_training_means(ckpt)
    return samplers.fit_digit(means, labels, digit, ckpt.dataset.label_names)


def sampler_latents(ckpt: Checkpoint, sampler: str, n: int, seed: int, digit: int | None = None) -> np.ndarray:
    """n latents from "prior", "mixture" or "digit" (``digit`` given), the same for the same seed."""
    if sampler == "prior":
        return latent.prior_samples(n, ckpt.config.latent_dim, seed=seed)
    if sampler == "mixture":
        return samplers.mixture_samples(mixture(ckpt), n, seed=seed)
    return digit_gaussian(ckpt, digit).sample(n, seed=seed)


@per_model(max_entries=64, spinner=f"Judging {samplers.QUALITY_SAMPLES:,} samples…")
def sample_quality(ckpt: Checkpoint, sampler: str, digit: int | None = None) -> samplers.SampleQuality:
    """What the vote makes of QUALITY_SAMPLES decoded samples of a sampler (seed 0), once per model."""
    z = sampler_latents(ckpt, sampler, samplers.QUALITY_SAMPLES, 0, digit)
    return samplers.sample_quality(ckpt.model, digit_vote(ckpt), z)


def _prepare(ckpt: Checkpoint) -> None:
    """What ``warm_up`` fills, in the order a learner is likely to need it: Draw's first drawing
    (its score's reference, the vote, the nearest test digits), Compare's first open (both maps of
    its default pair), then Generate's samplers."""
    torch.set_num_threads(1)  # as a page's work (see resources.use_one_thread): the other core trains
    test_negative_elbo(ckpt)
    digit_vote(ckpt)
    test_encodings(ckpt)
    for path in compare_pair():
        with contextlib.suppress(CheckpointError):  # a missing or damaged file: Compare says so itself
            compare_map(load(path))
    for sampler in ("prior", "mixture"):
        sample_quality(ckpt, sampler, None)
    with contextlib.suppress(samplers.TooFewExamplesError):
        sample_quality(ckpt, "digit", FIRST_DIGIT)


@per_model(max_entries=4)
def _warm_up(ckpt: Checkpoint) -> threading.Thread:
    # scikit-learn, which the thread loads, imports pandas; Plotly looks pandas up in sys.modules
    # without waiting for an import in progress, so a page's first figure found it half made (no
    # Series) and failed. Loaded here first, before the thread starts.
    importlib.import_module("pandas")
    thread = threading.Thread(target=_prepare, args=(ckpt,), name=f"warm-up {ckpt.name}", daemon=True)
    thread.start()
    return thread


def warm_up(ckpt: Checkpoint) -> threading.Thread | None:
    """Fill the default model's slow caches (the test set's scores and encodings, the training
    digits' means and the vote's index, Compare's maps, the mixture and the samplers' verdicts;
    seconds of CPU) on a thread of their own, once per model. A learner's first drawing, and a
    class's first visit to Draw, Compare or Generate, then find them ready, instead of holding one
    of the page queue's two places while every other session waits behind it. Any page that
    comes first waits for the same computation, not a second one (the caches compute each key
    once). None when the settings turn the warm-up off."""
    data_of(ckpt)  # in this script run: the thread has none to show its spinner in
    return _warm_up(ckpt) if settings().warm_up else None


# ---------------------------------------------------------------- the Home page's model summary


@per_model(max_entries=8)
def loss_curves(ckpt: Checkpoint) -> go.Figure:
    """The figure of the model's training history (building it takes 100+ ms, longer than a page
    switch may)."""
    return loss_figure(ckpt.history, fine_tune_from=ckpt.train_config.fine_tune_start)


@per_model(max_entries=8)
def layers(ckpt: Checkpoint) -> list[dict]:
    """``vae.summary.layer_table`` of the model (a forward pass with hooks), read-only."""
    return layer_table(ckpt.model)


def active_units(ckpt: Checkpoint) -> int:
    """Latent dimensions the model uses: its film's frame of the kept epoch, else measured on the
    test set's encodings (``vae.film.active_units``)."""
    if ckpt.film is not None:
        return film.kept_active_units(ckpt)
    return film.active_units(test_encodings(ckpt)[0])


# ---------------------------------------------------------------- two models side by side


def compare_pair() -> tuple[Path, Path]:
    """The files the Compare page opens on: the seed article's model (A) against the default (B)."""
    return checkpoint_dir() / "tutorial.pt", default_checkpoint()


@per_model(max_entries=8, spinner="Projecting the test digits…")
def compare_map(ckpt: Checkpoint):
    """(test indices, latent.Projection, labels) of the Compare page's map of the model: raw for a
    2-D latent, else PCA."""
    indices, proj = _projection(ckpt, COMPARE_DIGITS, "raw" if ckpt.config.latent_dim == 2 else "pca", 30.0, 0)
    return indices, proj, data_of(ckpt).test_labels.numpy()[indices]


@per_model(max_entries=64)
def compare_map_figure(ckpt: Checkpoint, marked: int | None) -> go.Figure:
    """The model's Compare map with the test digit ``marked`` ringed."""
    indices, proj, labels = compare_map(ckpt)
    titles = ("z₁", "z₂") if proj.method == "raw" else ("PCA 1", "PCA 2")
    return digits_map_figure(proj.coords, labels, indices, ckpt.dataset.label_names, marked, titles)


# ---------------------------------------------------------------- one digit through the model (Inside)
# A file's checkpoint, or the run training now as its latest epoch ended (``classroom.jobs.snapshot_model``,
# keyed by its run and that epoch), so a page refresh that finds no new epoch recomputes nothing.


def image_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=64)
def _explanation(_ckpt: Checkpoint, key: str, image_key: str, seed: int, _image: np.ndarray) -> explain.Explanation:
    return explain.explain(_ckpt, _image, seed)


def explanation(ckpt: Checkpoint, image: np.ndarray, seed: int) -> explain.Explanation:
    """``vae.explain.explain`` of ``image`` through the model, with ε's ``seed``."""
    return _explanation(ckpt, ckpt.key, image_key(image), seed, image)


# What Inside's "Why variational" shows of one image, each made once per model and image.
POSTERIOR_VIEWS = {
    "grid": (posterior.posterior_grid, "Finding the true posterior p(z|x) on a grid of latents…"),
    "bounds": (posterior.iw_bounds, f"Estimating log p(x) with {max(posterior.IW_SAMPLES):,} importance samples…"),
    "sigma": (posterior.sigma_scan, "Scoring the ELBO with q's σ scaled…"),
}


@st.cache_resource(show_spinner=False, max_entries=48)
def _posterior_view(_ckpt: Checkpoint, key: str, image_key: str, view: str, _image: np.ndarray):
    return POSTERIOR_VIEWS[view][0](_ckpt.model, _image)


def posterior_view(ckpt: Checkpoint, image: np.ndarray, view: str):
    """One of ``POSTERIOR_VIEWS`` of ``image`` through the model (``vae.posterior``), with its spinner."""
    with st.spinner(POSTERIOR_VIEWS[view][1], show_time=True):
        return _posterior_view(ckpt, ckpt.key, image_key(image), view, image)


OVERVIEW_DIGITS = 2000  # test digits on the whole-plane view


def _overview_figure(ckpt: Checkpoint, image: np.ndarray, names: tuple[str, str]) -> go.Figure:
    grid = posterior_view(ckpt, image, "grid")
    rows = latent.test_subset(OVERVIEW_DIGITS, len(data_of(ckpt).test_images))
    means = test_encodings(ckpt)[0][rows][:, list(grid.dims)]
    return latent_overview_figure(means, data_of(ckpt).test_labels.numpy()[rows], ckpt.dataset.label_names, grid,
                                  names)


def _bounds_figure(ckpt: Checkpoint, image: np.ndarray) -> go.Figure:
    grid = posterior_view(ckpt, image, "grid")
    bounds = posterior_view(ckpt, image, "bounds")
    if grid.sliced:  # the slice's normaliser is not log p(x): the gap comes from the bounds alone
        return bounds_figure(bounds)
    return bounds_figure(bounds, grid.log_px, grid.elbo)  # the quadrature's, as the identity above the chart


# The charts of "Why variational", by name: f(ckpt, image, *hashable arguments) -> figure.
POSTERIOR_FIGURES = {
    "bounds": _bounds_figure,
    "plane": lambda ckpt, image, z, names: posterior_plane_figure(
        posterior_view(ckpt, image, "grid"), np.array(z, dtype=np.float32), names),
    "overview": _overview_figure,
    "sigma": lambda ckpt, image, scale: sigma_scan_figure(posterior_view(ckpt, image, "sigma"), scale),
}


@st.cache_resource(show_spinner=False, max_entries=64)
def _posterior_view_figure(_ckpt: Checkpoint, key: str, image_key: str, figure: str, args: tuple,
                           _image: np.ndarray) -> go.Figure:
    return POSTERIOR_FIGURES[figure](_ckpt, _image, *args)


def posterior_view_figure(ckpt: Checkpoint, image: np.ndarray, figure: str, *args) -> go.Figure:
    """One of ``POSTERIOR_FIGURES``, made once per model, image and arguments and shared read-only:
    Plotly builds the four in about 30 ms, more than the rest of an Inside rerun for a new ε."""
    return _posterior_view_figure(ckpt, ckpt.key, image_key(image), figure, args, image)


@per_model(max_entries=8)
def code(ckpt: Checkpoint) -> dict[str, str]:
    """The code behind each step of the model's pass, read from the running code."""
    return explain.source_of(ckpt.model)


@per_model(max_entries=8)
def _dimension_usage(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    if ckpt.film is not None:
        frame = film.kept_frame(ckpt)
        return ckpt.film.kl_per_dim[frame], film.used_dimensions(ckpt.film.means[frame])
    mu, logvar = test_encodings(ckpt)
    kl = np.zeros(mu.shape[1]) if logvar is None else latent.kl_per_dimension(mu, logvar)
    return kl, film.used_dimensions(mu)


def dimension_usage(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """(KL [d], used [d]) of the model's latent dimensions over many digits: its film's frame of
    its epoch, else the test set's encodings."""
    if ckpt.film is None:
        test_encodings(ckpt)  # its spinner on a cold start
    return _dimension_usage(ckpt)
