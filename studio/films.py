"""A model's training film as the pages show it: its layouts (PCA, or t-SNE where the clusters
show), how well each frame keeps neighbours together, and the animated figures, each made once
per model file for every session."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from studio.analysis import tsne_cache
from studio.figures import film_figure, lockstep_film_figure
from studio.resources import model_key, per_model
from vae import compare, film


def test_curve(history: dict) -> list[tuple[float, float]]:
    """(epoch, test -ELBO) of a training history, for the film's curve."""
    epochs, _, loss = compare.elbo_curve(history)
    return list(zip(epochs.tolist(), loss.tolist()))


def layout_ready(model, method: str) -> bool:
    """Whether ``model``'s film can be shown in ``method``'s layout at once (PCA always; t-SNE when
    stored in the file or kept on disk)."""
    return method != "tsne" or model.latent_dim == 2 or film.stored_tsne_layout(model.film, tsne_cache()) is not None


@per_model(max_entries=8)
def _layout(model, method: str) -> np.ndarray:
    return film.film_layout(model.film, method, cache_dir=tsne_cache())


def layout(model, method: str) -> np.ndarray:
    """``model``'s film laid out by ``method``. A t-SNE map not made before is made first, with a
    progress bar (tens of seconds, once per model), and kept on disk, where the cache reads it."""
    if not layout_ready(model, method):
        bar = st.progress(0.0, text="Laying out the film with t-SNE (once per model, then kept on disk)…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Laying out the film with t-SNE: frame {done} of {total} "
                                            "(once per model, then kept on disk)")

        film.tsne_layout(model.film, tsne_cache(), progress)
        bar.empty()
    return _layout(model, method)


@per_model(max_entries=8)
def agreement(model, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the share of the film's digits whose nearest neighbours share their label: in
    the latent space and on ``method``'s map (``vae.film.neighbour_agreement``); after ``layout``,
    which makes a t-SNE map with its progress bar."""
    labels = model.film.labels
    return film.neighbour_agreement(model.film.means, labels), film.neighbour_agreement(_layout(model, method), labels)


@per_model(max_entries=32, spinner="Building the film…")
def player_figure(model, start: int, method: str = "pca") -> go.Figure:
    """The animated film of ``model`` (which has one) in ``method``'s layout, opening at frame
    ``start``; after ``layout``, as ``agreement``."""
    return film_figure(model.film, _layout(model, method), test_curve(model.history), start=start,
                       method=method, agreement=agreement(model, method))


@st.cache_resource(show_spinner="Building both films…", max_entries=8)
def _lockstep(_model_a, _model_b, key_a, key_b, method: str) -> go.Figure:
    names = _model_a.checkpoint_path.stem, _model_b.checkpoint_path.stem
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    layouts = (_layout(_model_a, method), _layout(_model_b, method))
    return lockstep_film_figure(dict(zip(names, (_model_a.film, _model_b.film))), dict(zip(names, layouts)), method)


def lockstep_figure(model_a, model_b) -> go.Figure:
    """Both models' films on one clock (both have films), both in the t-SNE layout where the
    clusters show if both have one ready, else both in PCA's."""
    method = "tsne" if all(layout_ready(m, "tsne") for m in (model_a, model_b)) else "pca"
    return _lockstep(model_a, model_b, model_key(model_a), model_key(model_b), method)
