"""The test set in latent space: a 2-D map to click on, decoding any point or location."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from studio import access, analysis, learner, resources, views, words
from studio.datasets import noun, on_dataset, test_caption
from studio.figures import MAP_DRAWING, MAP_GRID, MAP_TEST, latent_map_figure
from vae import latent
from vae.checkpoint import Checkpoint
from vae.images import make_grid, picture

METHOD_LABELS = {"raw": "Raw latent (2-D)", "pca": "PCA", "tsne": "t-SNE"}
SUBSET_SIZES = [250, 500, 1000, 2000, 5000, 10_000]
GRID_SIDE = 25  # clickable grid: GRID_SIDE x GRID_SIDE faint points over the map
VIEWS = {"map": "Map", "film": "Training film"}
TYPED_KEY = "map_typed"  # a test image chosen by number: the keyboard's way to a point
CLICK_KEY = "map_last_click"  # the map's selection as last seen, to tell a new click from an old one
MAP_NEIGHBOURS = 5  # the points nearest a chosen one that the sentence under the map names


def chart_key(ckpt: Checkpoint, method: str, size: int, perplexity: float) -> str:
    """A new key (so a fresh, unselected chart) whenever the map changes: a selection made on
    one map never decodes a location on another. E.g. "latent_map_default_pca_2000_30"."""
    return f"latent_map_{ckpt.name}_{method}_{size}_{perplexity:g}"


@st.cache_resource(show_spinner=False, max_entries=16)
def figure(map_key: str, _indices, _labels, label_names: tuple[str, ...], _proj: latent.Projection, drawing,
           show_grid: bool, _components) -> go.Figure:
    """The map (``studio.figures.latent_map_figure``), cached per map (``map_key``) and drawing: building
    2,000+ points takes longer than a click may. ``drawing``: (xy, covariance rows) or None."""
    xy, covariance = drawing if drawing is not None else (None, None)
    return latent_map_figure(_proj, _indices, _labels, label_names, GRID_SIDE if show_grid else 0, xy,
                             None if covariance is None else np.array(covariance), _components)


def mixture_components(ckpt: Checkpoint, proj: latent.Projection) -> np.ndarray | None:
    """For an unlabelled set, the map positions [k, 2] of the centres of the Gaussian mixture fitted
    to its training means (Generate samples from it): its kinds, found without labels. None otherwise."""
    if ckpt.dataset.labelled:
        return None
    return np.array([proj.to_map(mean) for mean in analysis.mixture(ckpt).means_])


def drawing_on_map(ckpt: Checkpoint, proj: latent.Projection):
    """The Draw page's last digit on this map as (position, covariance rows or None), hashable for
    the figure's cache; re-encoded if it was drawn with another model. None before any drawing."""
    drawing = analysis.last_drawing(ckpt)
    if drawing is None:
        return None
    mu, logvar = drawing["mu"], drawing["logvar"]
    if drawing["checkpoint"] != ckpt.key:
        (mu,), (logvar,) = latent.encode(ckpt.model, drawing["image"][None])
    covariance = None if logvar is None else proj.to_map_covariance(logvar)
    return (tuple(float(v) for v in proj.to_map(mu)),
            None if covariance is None else tuple(map(tuple, covariance.tolist())))


def chosen_point(clicked: list, test_count: int) -> dict:
    """The point to show: the one clicked on the map, or a test image chosen by its number, whichever
    came last (a new click clears the number). The number input is the keyboard's and a screen
    reader's way to a point; it comes after the chart, so a new click can still clear it."""
    click = clicked[0] if clicked else {}  # a dict: AppTest injects plain dicts
    if click and repr(click) != st.session_state.get(CLICK_KEY):
        st.session_state[TYPED_KEY] = None
    st.session_state[CLICK_KEY] = repr(click)
    typed = st.number_input("Or choose a test image by number", 0, test_count - 1, value=None, key=TYPED_KEY,
                            placeholder=f"0 to {test_count - 1}", help="Shows that image, where it lies on the map, "
                            "its nearest points there, and its decoding: the map without a mouse.")
    if typed is not None:
        return {"customdata": [MAP_TEST, int(typed)]}
    return click


def show_selection(ckpt: Checkpoint, point: dict, indices: np.ndarray, proj: latent.Projection) -> None:
    """The clicked digit and its decoding, or the decoding of a clicked grid location."""
    data = point.get("customdata") or []
    if isinstance(data, dict):  # a typed array's row comes back keyed by position
        data = [data[str(i)] for i in range(len(data))]
    test = resources.data_of(ckpt)
    if data and data[0] == MAP_TEST:
        index = int(data[1])
        st.session_state[analysis.MAP_PICK_KEY] = index  # the Inside page can take it through the model
        learner.record("map_click")
        mu = analysis.test_encodings(ckpt)[0][index]
        shown_at = np.flatnonzero(indices == index)
        if len(shown_at):
            near, _ = latent.nearest(proj.coords, proj.coords[shown_at[0]], MAP_NEIGHBOURS + 1)
            names = [test_caption(test, int(indices[i])) for i in near if i != shown_at[0]][:MAP_NEIGHBOURS]
            st.caption(f"At ({proj.coords[shown_at[0], 0]:.2f}, {proj.coords[shown_at[0], 1]:.2f}) on the map. "
                       + words.near_point(names))
        else:
            st.caption(f"Not among the {len(indices):,} images the map shows: choose more above to see it there.")
        original, decoded = st.columns(2)
        original.image(picture(test.test_images[index : index + 1], 5), caption=test_caption(test, index),
                       alt=test_caption(test, index))
        decoded.image(picture(latent.decode(ckpt.model, mu), 5), caption="Decoded from its mean",
                      alt=f"{test_caption(test, index)}, decoded from its latent mean")
    elif data and data[0] == MAP_GRID:
        x, y = float(data[1]), float(data[2])
        z = proj.to_latent((x, y))
        st.image(picture(latent.decode(ckpt.model, z), 5), caption=f"Decoded at ({x:.2f}, {y:.2f})",
                 alt=f"The decoding of the map's location ({x:.2f}, {y:.2f})")
        if not proj.exact_inverse:
            near, _ = latent.nearest(proj.coords, np.array([x, y], dtype=np.float32), latent.MIX_NEIGHBOURS)
            st.caption(f"t-SNE has no inverse map, so this is the decoding of the {latent.MIX_NEIGHBOURS} nearest "
                       "points' latents mixed with inverse-distance weights. Those points:")
            st.image(make_grid(test.test_images[indices[near]], ncol=latent.MIX_NEIGHBOURS, scale=2),
                     alt=f"The {latent.MIX_NEIGHBOURS} test {noun(ckpt.dataset)}s nearest that location: "
                     + ", ".join(test_caption(test, int(i)) for i in indices[near]))
        elif proj.method == "pca":
            st.caption("PCA is linear, so this location maps back to exactly one latent (on the plane "
                       "of the two main directions through the mean).")
    elif data and data[0] == MAP_DRAWING:
        st.image(picture(st.session_state[analysis.LAST_DRAWING_KEY]["image"], 5),
                 caption="Your last drawing", alt="Your last drawing, as the model sees it")
    else:
        st.info(f"Click a point to see the {noun(ckpt.dataset)} and its decoding, or a faint grid point to decode "
                "that location.",
                icon=":material/touch_app:")


def show_map(ckpt: Checkpoint) -> None:
    """The projection controls, the clickable map and, for an exact inverse, the manifold."""
    methods = (["raw"] if ckpt.config.latent_dim == 2 else []) + ["pca", "tsne"]
    if st.session_state.get("map_method") not in methods:
        st.session_state["map_method"] = methods[0]
    controls = st.columns([3, 3, 2])
    method = controls[0].radio("Projection", methods, format_func=METHOD_LABELS.get, horizontal=True, key="map_method")
    size = controls[1].select_slider(f"Test {noun(ckpt.dataset)}s shown", SUBSET_SIZES, value=2000, key="map_subset",
                                     help=f"A fixed random subset of the {ckpt.dataset.test_count:,} test images.")
    perplexity = 30.0
    if method == "tsne":
        perplexity = float(controls[2].slider("Perplexity", 5, 50, 30, key="map_perplexity",
                                              help="Roughly how many neighbours each point keeps close."))
    show_grid = controls[2].toggle("Clickable grid", value=True, key="map_grid",
                                   help="Faint points that decode their exact location when clicked.")
    if ckpt.config.latent_dim != 2:
        st.caption(f"This model's latent has {ckpt.config.latent_dim} dimensions, so the map is a projection. "
                   "For raw latent coordinates, choose **latent2d** as the active model in the sidebar.")

    views.autoencoder_note(ckpt)
    indices, proj = analysis.projection(ckpt, size, method, perplexity)
    data = resources.data_of(ckpt)
    labels = data.test_labels.numpy()[indices]
    drawing = drawing_on_map(ckpt, proj)
    if method == "tsne":
        st.caption("t-SNE keeps neighbours together but distorts distances, and it cannot decode a location: "
                   "clicking a grid point decodes a weighted mix of the nearest points' latents."
                   + (" Your drawing (★) sits at the weighted mean of its nearest neighbours' positions; "
                      "t-SNE has no linear map to carry its uncertainty, so no ellipse is drawn."
                      if drawing is not None else ""))
    elif drawing is not None:
        plane = "" if method == "raw" else ", projected onto the PCA plane"
        st.caption(f"The rings around your drawing (★) are 1σ and 2σ of q(z|x){plane}: the encoder is not sure "
                   "where your digit belongs, and any latent inside them would do. The decoder is fed samples "
                   "from this cloud while it trains, which is why neighbouring latents decode alike.")
    if not data.info.labelled:
        st.caption(f"{data.info.name} has no labels, so its images share one colour. The ✕ marks are the centres of "
                   "the Gaussian mixture fitted to where its training images landed (Generate samples from it): "
                   "the kinds of image the model has told apart on its own.")

    map_key = chart_key(ckpt, method, size, perplexity)
    chart, detail = st.columns([3, 1], gap="medium")
    with chart:
        event = access.chart(
            figure(f"{map_key}_{ckpt.key}", indices, labels, data.info.label_names, proj, drawing, show_grid,
                   mixture_components(ckpt, proj)),
            words.clusters(proj.coords, labels, data.info.label_names),
            on_select="rerun", selection_mode="points", key=map_key, toolbar=True,
        )
    with detail:
        show_selection(ckpt, chosen_point(event["selection"]["points"], len(data.test_images)), indices, proj)

    if proj.exact_inverse:
        st.header("Manifold")
        side = st.columns(3)[0].slider("Grid size", 8, 25, 15, key="map_manifold_side")
        st.caption("Decodings on an even grid over the map's range, laid out like the map (up is +y): "
                   "how the decoder fills the space between the digits.")
        st.image(analysis.manifold(ckpt, proj, side),
                 alt=f"A {side} by {side} grid of decodings over the map's range, laid out like the map")


st.title("Latent map")
ckpt = resources.active()
if ckpt.dataset.key != "mnist":
    st.markdown(on_dataset(ckpt.dataset))
st.session_state.setdefault("map_view", "map")
view = st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, key="map_view",
                            label_visibility="collapsed") or "map"
if view == "film":
    st.caption("How this model's latent space formed while it trained: the same test images, a fixed "
               "sample with every label alike, encoded at every frame.")
    views.film_player(ckpt, key="map_film")
else:
    show_map(ckpt)
