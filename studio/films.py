"""A model's training film as the pages show it: its layouts (PCA, or t-SNE where the clusters
show), how well each frame keeps neighbours together, and the animated figures, each made once
per model file for every session."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from studio.analysis import tsne_cache
from studio.figures import film_figure, lockstep_film_figure
from studio.resources import per_model
from vae import compare, film
from vae.checkpoint import Checkpoint
from vae.history import History

FIRST_EPOCH_POINTS = 60  # of the training batches' -ELBO through epoch 1, on the film's curve


def test_curve(history: History) -> list[tuple[float, float]]:
    """(epoch, test -ELBO) of a training history, for the film's curve."""
    epochs, _, loss = compare.elbo_curve(history)
    return list(zip(epochs.tolist(), loss.tolist()))


def first_epoch_curve(history: History) -> list[tuple[float, float]]:
    """(epoch, -ELBO) of about FIRST_EPOCH_POINTS training batches through epoch 1, for the film's
    curve: the fall its first frames show, before the first test -ELBO. BCE + KL, not the batch's
    loss, which weighs the KL by β."""
    steps = [step for step in history.steps if step.epoch <= 1]
    return [(step.epoch, step.bce + step.kl) for step in steps[:: max(1, len(steps) // FIRST_EPOCH_POINTS)]]


def layout_ready(ckpt: Checkpoint, method: str) -> bool:
    """Whether the model's film can be shown in ``method``'s layout at once (PCA always; t-SNE when
    stored in the file or kept on disk)."""
    return (method != "tsne" or ckpt.config.latent_dim == 2
            or film.stored_tsne_layout(ckpt.film, tsne_cache()) is not None)


@per_model(max_entries=8)
def _layout(ckpt: Checkpoint, method: str) -> np.ndarray:
    return film.film_layout(ckpt.film, method, cache_dir=tsne_cache())


def layout(ckpt: Checkpoint, method: str) -> np.ndarray:
    """The model's film laid out by ``method``. A t-SNE map not made before is made first, with a
    progress bar (tens of seconds, once per model), and kept on disk, where the cache reads it."""
    if not layout_ready(ckpt, method):
        bar = st.progress(0.0, text="Laying out the film with t-SNE (once per model, then kept on disk)…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Laying out the film with t-SNE: frame {done} of {total} "
                                            "(once per model, then kept on disk)")

        film.tsne_layout(ckpt.film, tsne_cache(), progress)
        bar.empty()
    return _layout(ckpt, method)


@per_model(max_entries=8)
def agreement(ckpt: Checkpoint, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the share of the film's digits whose nearest neighbours share their label: in
    the latent space and on ``method``'s map (``vae.film.neighbour_agreement``); after ``layout``,
    which makes a t-SNE map with its progress bar."""
    labels = ckpt.film.labels
    return film.neighbour_agreement(ckpt.film.means, labels), film.neighbour_agreement(_layout(ckpt, method), labels)


@per_model(max_entries=32, spinner="Building the film…")
def player_figure(ckpt: Checkpoint, start: int, method: str = "pca") -> go.Figure:
    """The animated film of the model (which has one) in ``method``'s layout, opening at frame
    ``start``; after ``layout``, as ``agreement``."""
    return film_figure(ckpt.film, _layout(ckpt, method), ckpt.dataset.label_names, test_curve(ckpt.history),
                       start=start, method=method, agreement=agreement(ckpt, method),
                       first_epoch=first_epoch_curve(ckpt.history))


@st.cache_resource(show_spinner="Building both films…", max_entries=8)
def _lockstep(_ckpt_a: Checkpoint, _ckpt_b: Checkpoint, names: tuple[str, str], key_a: str, key_b: str,
              method: str) -> go.Figure:
    layouts = (_layout(_ckpt_a, method), _layout(_ckpt_b, method))
    return lockstep_film_figure(dict(zip(names, (_ckpt_a.film, _ckpt_b.film))), dict(zip(names, layouts)), method)


def lockstep_figure(ckpt_a: Checkpoint, ckpt_b: Checkpoint) -> go.Figure:
    """Both models' films on one clock (both have films), both in the t-SNE layout where the
    clusters show if both have one ready, else both in PCA's."""
    method = "tsne" if all(layout_ready(c, "tsne") for c in (ckpt_a, ckpt_b)) else "pca"
    names = ckpt_a.name, ckpt_b.name
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    return _lockstep(ckpt_a, ckpt_b, names, ckpt_a.key, ckpt_b.key, method)
