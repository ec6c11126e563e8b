"""Views that more than one page shows, or that a benchmark runs alone: the training film's player
and what to notice in it, and the Compare page's linked maps.

Pages call these with a model; the figures come from ``studio`` (cached) and ``vae.plots``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import studio
from vae import latent
from vae.film import Film, gif_bytes
from vae.images import picture, upscale
from vae.plots import epoch_label

SIDES = ("a", "b")  # the Compare page's two models
SELECTED_KEY = "compare_selected"  # the test digit chosen on either of its maps


def notes(film: Film, kept_epoch: int | None = None) -> dict[str, str]:
    """What to notice in each view of ``film``, in two short lines each, from its own numbers."""
    last = film.frames - 1 if kept_epoch is None else film.frame_at(kept_epoch)
    peak = int(np.argmax(film.active_units[: last + 1]))
    used, dims = int(film.active_units[last]), film.latent_dim
    collapsed, switched_off = dims - used, int(film.active_units[peak]) - used
    return {
        "map": "Before training (epoch 0) the digits sit in one tangle. Watch the colours pull apart into "
               "clusters, most of it inside epoch 1; later epochs only tighten and arrange them.",
        "samples": "The same 16 latents z are decoded in every frame: grey blobs first, then strokes, "
                   "then digits that sharpen as the decoder learns what the prior's codes mean.",
        "dims": f"Each row is one latent dimension. {used} of {dims} light up and carry information; "
                + (f"{collapsed} stay dark at KL ≈ 0: the encoder ignores them and they equal the prior "
                   "(posterior collapse). " if collapsed else "none has collapsed to the prior. ")
                + (f"At epoch {epoch_label(film.epochs[peak])} {film.active_units[peak]} were active: "
                   f"{switched_off} of them switched off again later." if switched_off > 0 else ""),
    }


def film_player(model, key: str) -> None:
    """Play, pause, step through and export ``model``'s training film; or say why there is none."""
    film = model.film
    if film is None:
        if model.film_error:
            st.warning(f"This model's training film cannot be shown: {model.film_error}. "
                       "The model itself is fine.", icon=":material/movie_off:")
        else:
            st.info("This model has no training film: it was trained before films were recorded, or with "
                    "`--no-film`. Train a model on the Train page to record one.", icon=":material/movie:")
        return
    frame_key = f"{key}_frame"
    start = min(st.session_state.get(frame_key, 0), film.frames - 1)  # before training: Play shows it all

    def step(by: int) -> None:
        st.session_state[frame_key] = min(max(start + by, 0), film.frames - 1)

    back, forward, where, export = st.columns([1.3, 1.3, 3.4, 2], vertical_alignment="center")
    back.button("◀ Frame", key=f"{key}_back", on_click=step, args=(-1,), disabled=start == 0,
                help="One frame back from the frame the player opened at.")
    forward.button("Frame ▶", key=f"{key}_forward", on_click=step, args=(1,), disabled=start == film.frames - 1,
                   help="One frame forward from the frame the player opened at.")
    where.caption(f"Opened at epoch **{epoch_label(film.epochs[start])}** (frame {start + 1} of {film.frames}). "
                  "**Play** runs in your browser; click the −ELBO curve or the heatmap to open another epoch.")
    export.download_button("Download GIF", data=lambda: gif_bytes(film),
                           file_name=f"{model.checkpoint_path.stem}-film.gif",
                           mime="image/gif", icon=":material/download:", key=f"{key}_gif", on_click="ignore")
    event = st.plotly_chart(studio.film_player_figure(model, start), key=f"{key}_chart_{start}",
                            on_select="rerun", selection_mode="points")
    points = [p for p in event["selection"]["points"] if p.get("customdata")]
    if points:
        chosen = points[0]["customdata"]
        st.session_state[frame_key] = int(chosen[0] if isinstance(chosen, list) else chosen["0"])
        st.rerun()
    show_notes(film, model.metrics.get("epoch"))


def show_notes(film: Film, kept_epoch: int | None = None) -> None:
    for column, text in zip(st.columns(3), notes(film, kept_epoch).values()):
        column.caption(text)


def clicked_digit(selected: int | None) -> int | None:
    """The test digit clicked on either map since the last run, else ``selected``. The maps' keys
    name the digit they ring, so after a click both are drawn afresh, with nothing selected."""
    for side in SIDES:
        state = st.session_state.get(f"compare_map_{side}_{selected}") or {}
        points = [p for p in state.get("selection", {}).get("points", []) if p.get("customdata")]
        if points:
            data = points[0]["customdata"]
            return int(data[0] if isinstance(data, list) else data["0"])
    return selected


@st.fragment
def linked_maps(models: dict) -> None:
    """Two models' maps of the same test digits, side by side: a digit clicked on either is ringed
    on both, and both decode it. A fragment: a click reruns the maps and their decodings only, not
    the rest of the Compare page (its films' figure alone is megabytes to send again)."""
    selected = st.session_state[SELECTED_KEY] = clicked_digit(st.session_state.get(SELECTED_KEY))
    for side, column, (name, model) in zip(SIDES, st.columns(len(models)), models.items()):
        with column:
            st.caption(f"{name}: {'raw latent' if model.latent_dim == 2 else 'PCA of the latent means'}")
            st.plotly_chart(studio.compare_map_figure(model, selected), on_select="rerun",
                            selection_mode="points", key=f"compare_map_{side}_{selected}")
    if selected is None:
        st.info("Click a digit on either map: it is ringed on both, and both models decode it.",
                icon=":material/touch_app:")
        return
    image = studio.mnist().test_images[selected].numpy()
    label = int(studio.mnist().test_labels[selected])
    cells = st.columns(1 + len(models))
    cells[0].image(upscale(image, 4), caption=f"Test #{selected}: a {label}")
    for cell, (name, model) in zip(cells[1:], models.items()):
        mu = studio.test_encodings(model)[0][selected]
        cell.image(picture(latent.decode(model, mu), 4), caption=f"{name} decodes its mean")
