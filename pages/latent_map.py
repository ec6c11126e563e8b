"""The test set in latent space: a 2-D map to click on, decoding any point or location."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import studio
import views
from vae import latent
from vae.images import make_grid, to_uint8, upscale
from vae.plots import DIGIT_COLOURS

METHOD_LABELS = {"raw": "Raw latent (2-D)", "pca": "PCA", "tsne": "t-SNE"}
SUBSET_SIZES = [250, 500, 1000, 2000, 5000, 10_000]
GRID_SIDE = 25  # clickable grid: GRID_SIDE x GRID_SIDE faint points over the map
GRID, TEST, DRAWING = studio.GRID, studio.TEST, studio.DRAWING  # point kinds in custom_data
VIEWS = {"map": "Map", "film": "Training film"}


def chart_key(model, method: str, size: int, perplexity: float) -> str:
    """A new key (so a fresh, unselected chart) whenever the map changes: a selection made on
    one map never decodes a location on another. E.g. "latent_map_default_pca_2000_30"."""
    return f"latent_map_{model.checkpoint_path.stem}_{method}_{size}_{perplexity:g}"


@st.cache_resource(show_spinner=False, max_entries=16)
def figure(map_key: str, _indices, _labels, _proj: latent.Projection, drawing_xy, show_grid: bool) -> go.Figure:
    """Digits coloured by label (custom_data [TEST, index, label]), an optional grid of
    clickable locations ([GRID, x, y]) underneath, and the last drawing as a star.
    Cached per map (``map_key``): building 2,000+ points takes longer than a click may."""
    indices, labels, proj = _indices, _labels, _proj
    fig = go.Figure()
    if show_grid:
        grid = latent.grid_points(*proj.extent(), GRID_SIDE)
        fig.add_scatter(
            x=grid[:, 0], y=grid[:, 1], mode="markers", name="grid", showlegend=False,
            marker=dict(size=5, color="rgba(120, 120, 120, 0.18)"),
            selected=dict(marker=dict(size=12, color="rgba(60, 60, 60, 0.9)")),
            unselected=dict(marker=dict(opacity=1.0)),
            customdata=np.column_stack([np.full(len(grid), GRID, grid.dtype), grid]),
            hovertemplate="decode here (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        fig.add_scatter(
            x=proj.coords[rows, 0], y=proj.coords[rows, 1], mode="markers", name=str(digit),
            marker=dict(size=5, color=DIGIT_COLOURS[digit], opacity=0.8),
            selected=dict(marker=dict(size=14, opacity=1.0)), unselected=dict(marker=dict(opacity=0.6)),
            customdata=np.column_stack([np.full(len(rows), TEST), indices[rows], np.full(len(rows), digit)]),
            hovertemplate="digit %{customdata[2]} · test #%{customdata[1]}<extra></extra>",
        )
    if drawing_xy is not None:
        star = dict(x=[drawing_xy[0]], y=[drawing_xy[1]], mode="markers", legendgroup="drawing")
        fig.add_scatter(
            **star, name="your drawing", hoverinfo="skip",
            marker=dict(symbol="star", size=18, color="#ffd700", line=dict(color="black", width=1.5)),
            unselected=dict(marker=dict(opacity=1.0)),  # stays in full view while a digit is selected
        )
        # What a click picks: Plotly measures from each marker's edge, but counts a click inside a
        # marker as 1 - 3/radius, so small markers win, and a later trace wins a tie. A click on the
        # big star would go to any digit within ~4 px of its centre; this transparent marker of the
        # smallest size, drawn last, takes every click near the star's centre.
        fig.add_scatter(
            **star, name=studio.DRAWING_TARGET, showlegend=False,
            marker=dict(size=6, color="rgba(0, 0, 0, 0)"),
            selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
            customdata=[[DRAWING, 0, 0]], hovertemplate="your drawing<extra></extra>",
        )
    # The view takes in the drawing too: an odd one can land far outside the test digits.
    (x0, x1), (y0, y1) = proj.extent(pad=0.08, include=[] if drawing_xy is None else [drawing_xy])
    fig.update_layout(
        height=620, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="digit",
        legend=dict(itemsizing="constant"), xaxis=dict(range=[x0, x1]), yaxis=dict(range=[y0, y1]),
    )
    return fig


def drawing_position(model, proj: latent.Projection):
    """The Draw page's last digit on this map, re-encoded if it was drawn with another model."""
    drawing = st.session_state.get(studio.LAST_DRAWING_KEY)
    if drawing is None:
        return None
    mu = drawing["mu"]
    if drawing["checkpoint"] != studio.model_key(model)[0]:
        mu = latent.encode(model, drawing["image"])[0][0]
    return tuple(float(v) for v in proj.to_map(mu))


def show_selection(model, point: dict, indices: np.ndarray, proj: latent.Projection) -> None:
    """The clicked digit and its decoding, or the decoding of a clicked grid location."""
    data = point.get("customdata") or []
    if isinstance(data, dict):  # a typed array's row comes back keyed by position
        data = [data[str(i)] for i in range(len(data))]
    test = studio.mnist()
    if data and data[0] == TEST:
        index, label = int(data[1]), int(data[2])
        mu = studio.test_encodings(model)[0][index]
        original, decoded = st.columns(2)
        original.image(upscale(to_uint8(test.test_images[index].numpy())[0], 5), caption=f"Test #{index}: a {label}")
        decoded.image(upscale(to_uint8(latent.decode(model, mu))[0], 5), caption="Decoded from its mean")
    elif data and data[0] == GRID:
        x, y = float(data[1]), float(data[2])
        z = proj.to_latent((x, y))
        st.image(upscale(to_uint8(latent.decode(model, z))[0], 5), caption=f"Decoded at ({x:.2f}, {y:.2f})")
        if not proj.exact_inverse:
            near, _ = latent.nearest(proj.coords, np.array([x, y], dtype=np.float32), latent.MIX_NEIGHBOURS)
            st.caption(f"t-SNE has no inverse map, so this is the decoding of the {latent.MIX_NEIGHBOURS} nearest "
                       "points' latents mixed with inverse-distance weights. Those points:")
            st.image(make_grid(test.test_images[indices[near]], ncol=latent.MIX_NEIGHBOURS, scale=2))
        elif proj.method == "pca":
            st.caption("PCA is linear, so this location maps back to exactly one latent (on the plane "
                       "of the two main directions through the mean).")
    elif data and data[0] == DRAWING:
        st.image(upscale(to_uint8(st.session_state[studio.LAST_DRAWING_KEY]["image"])[0], 5),
                 caption="Your last drawing")
    else:
        st.info("Click a point to see the digit and its decoding, or a faint grid point to decode that location.",
                icon=":material/touch_app:")


def show_map(model) -> None:
    """The projection controls, the clickable map and, for an exact inverse, the manifold."""
    methods = (["raw"] if model.latent_dim == 2 else []) + ["pca", "tsne"]
    if st.session_state.get("map_method") not in methods:
        st.session_state["map_method"] = methods[0]
    controls = st.columns([3, 3, 2])
    method = controls[0].radio("Projection", methods, format_func=METHOD_LABELS.get, horizontal=True, key="map_method")
    size = controls[1].select_slider("Test digits shown", SUBSET_SIZES, value=2000, key="map_subset",
                                     help="A fixed random subset of the 10,000 test digits.")
    perplexity = 30.0
    if method == "tsne":
        perplexity = float(controls[2].slider("Perplexity", 5, 50, 30, key="map_perplexity",
                                              help="Roughly how many neighbours each point keeps close."))
    show_grid = controls[2].toggle("Clickable grid", value=True, key="map_grid",
                                   help="Faint points that decode their exact location when clicked.")
    if model.latent_dim != 2:
        st.caption(f"This model's latent has {model.latent_dim} dimensions, so the map is a projection. "
                   "For raw latent coordinates, choose **latent2d** as the active model in the sidebar.")

    indices, proj = studio.projection(model, size, method, perplexity)
    labels = studio.mnist().test_labels.numpy()[indices]
    drawing_xy = drawing_position(model, proj)
    if method == "tsne":
        st.caption("t-SNE keeps neighbours together but distorts distances, and it cannot decode a location: "
                   "clicking a grid point decodes a weighted mix of the nearest points' latents."
                   + (" Your drawing (★) sits at the weighted mean of its nearest neighbours' positions."
                      if drawing_xy is not None else ""))

    map_key = chart_key(model, method, size, perplexity)
    chart, detail = st.columns([3, 1], gap="medium")
    with chart:
        event = st.plotly_chart(
            figure(f"{map_key}_{studio.model_key(model)[1]}", indices, labels, proj, drawing_xy, show_grid),
            on_select="rerun", selection_mode="points", key=map_key,
        )
    with detail:
        points = event["selection"]["points"]  # a dict: AppTest injects plain dicts
        show_selection(model, points[0] if points else {}, indices, proj)

    if proj.exact_inverse:
        st.subheader("Manifold")
        side = st.columns(3)[0].slider("Grid size", 8, 25, 15, key="map_manifold_side")
        st.caption("Decodings on an even grid over the map's range, laid out like the map (up is +y): "
                   "how the decoder fills the space between the digits.")
        st.image(studio.manifold(model, proj, side))


st.title("Latent map")
model = studio.active_model()
st.session_state.setdefault("map_view", "map")
view = st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, key="map_view",
                            label_visibility="collapsed") or "map"
if view == "film":
    st.caption("How this model's latent space formed while it trained: the same 500 test digits "
               "(50 of each) encoded at every frame.")
    views.film_player(model, key="map_film")
else:
    show_map(model)
