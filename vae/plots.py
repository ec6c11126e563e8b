"""Plotly figures of a training history, shared by the app's pages and usable from Python."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CURVES = (("loss", "−ELBO (loss)"), ("bce", "Reconstruction (BCE)"), ("kl", "KL divergence"))


def loss_figure(history: dict, fine_tune_from: float | None = None) -> go.Figure:
    """Loss, BCE and KL side by side against epochs: training by step, validation and test by epoch.
    ``history`` is a checkpoint's (or the running job's) ``{"steps": [...], "epochs": [...]}``.
    The y-axes leave out the first tenth of training, whose huge early losses would flatten the rest.
    ``fine_tune_from`` (an epoch count) shades the importance-weighted epochs from there on: their
    training loss is that bound, below the -ELBO, so its curve drops there without the model's
    -ELBO doing so (``TrainConfig.fine_tune_start``)."""
    steps = history.get("steps", [])[:: max(1, len(history.get("steps", [])) // 1500)]
    epochs = history.get("epochs", [])
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in CURVES],
                        horizontal_spacing=0.06)
    series = [("train (by step)", steps, lambda r: r, {"color": "#9ecae1", "width": 1.5}, "lines"),
              ("validation", epochs, lambda r: r.get("val") or {}, {"color": "#ff7f0e", "width": 2}, "lines+markers"),
              ("test", epochs, lambda r: r.get("test") or {}, {"color": "#2ca02c", "width": 2, "dash": "dot"},
               "lines+markers")]
    x_max = max([r["epoch"] for r in steps + epochs], default=0)
    for col, (key, _) in enumerate(CURVES, start=1):
        shown = []
        for name, rows, part, line, mode in series:
            points = [(r["epoch"], part(r)[key]) for r in rows if key in part(r)]
            if points:
                x, y = zip(*points)
                fig.add_trace(go.Scatter(x=x, y=y, name=name, mode=mode, legendgroup=name, line=line,
                                         showlegend=col == 1), row=1, col=col)
                shown += [v for e, v in points if e >= 0.1 * x_max]
        if shown:
            low, high = min(shown), max(shown)
            margin = 0.08 * (high - low or abs(high) or 1)
            fig.update_yaxes(range=[low - margin, high + margin], row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
        if fine_tune_from is not None and x_max > fine_tune_from:
            label = {"annotation_text": "IW bound", "annotation_position": "top left"} if col == 1 else {}
            fig.add_vrect(x0=fine_tune_from, x1=x_max, fillcolor="#d8c8f0", opacity=0.35, line_width=0,
                          layer="below", row=1, col=col, **label)
            fig.update_xaxes(range=[0, 1.02 * x_max], row=1, col=col)  # the label's text would widen panel 1's axis
    fig.update_yaxes(title_text="nats per image", row=1, col=1)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


# ---------------------------------------------------------------- the training film

DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # Plotly's D3 palette, one per digit
FILM_FRAME_MS = 40  # Play: 25 frames/s, so a 75-frame film plays in 3 s
FILM_SLOW_FRAME_MS = 250  # Slow: 4 frames/s, to follow single digits
CURSOR = {"color": "#222", "width": 2, "dash": "dot"}


def epoch_label(epoch: float) -> str:
    """0, 1/16, 1/8, 1/4, 1/2, 1, 2, ...: a film frame's epoch as people say it."""
    if epoch == int(epoch):
        return str(int(epoch))
    from fractions import Fraction

    return str(Fraction(float(epoch)).limit_denominator(64))


def film_figure(film, layout, test_curve=(), start: int | None = None, animate: bool = True) -> go.Figure:
    """The training film as one Plotly figure: the digits' latent map (coloured by digit), the 16
    prior samples, the manifold (2-D latents) or the active-unit count, the KL of each dimension
    by frame (dimensions sorted by their final KL, so the collapsed ones sit together at the
    bottom) and the test -ELBO by epoch; dotted cursors mark the frame shown. With ``animate``,
    Play/Pause and a scrubber labelled by epoch play it in the browser (Plotly animation frames:
    no server round trip per frame). ``layout`` is ``vae.film.film_layout(film)``; ``test_curve``
    (epoch, -ELBO) pairs; ``start`` the frame shown first (default: the last), from which Play runs on. Clicking a cell of
    the heatmap or a point of the curve selects customdata [frame index]."""
    from .images import make_grid

    frames, dims = film.frames, film.latent_dim
    start = frames - 1 if start is None else int(np.clip(start, 0, frames - 1))
    two_d = dims == 2
    order = np.argsort(-film.kl_per_dim[-1], kind="stable")  # dimensions by final KL, largest on top
    fig = make_subplots(
        figure=AnimatedFigure(), rows=3, cols=3, column_widths=[0.46, 0.27, 0.27], row_heights=[0.42, 0.33, 0.25],
        specs=[[{"rowspan": 3}, {}, {}], [None, {"colspan": 2}, None], [None, {"colspan": 2}, None]],
        subplot_titles=["500 test digits" + (" (raw latent)" if two_d else " (PCA, aligned)"),
                        "16 fixed prior samples", "Decoded grid over [-3, 3]²" if two_d else "Active dimensions by epoch",
                        "KL per dimension (nats) in each frame, labelled by epoch", "Test −ELBO by epoch"],
        horizontal_spacing=0.05, vertical_spacing=0.1,
    )
    lo, hi = np.percentile(layout.reshape(-1, 2), [0.5, 99.5], axis=0)
    margin = 0.06 * (hi - lo) + 1e-6

    def animated(i: int) -> list[dict]:
        """The traces that change from frame to frame, in a fixed order, as plain dicts: 75 frames
        of validated Plotly objects took seconds to build."""
        traces = [{"type": "scatter", "x": _rounded(layout[i, film.labels == digit, 0]),
                   "y": _rounded(layout[i, film.labels == digit, 1])} for digit in range(10)]
        traces.append({"type": "image", "source": _png_url(make_grid(film.prior_samples[i], ncol=4, pad=1, scale=2))})
        if two_d:
            traces.append({"type": "image", "source": _png_url(film.manifold[i])})
        else:
            traces.append({"type": "scatter", "x": [film.epochs[i]], "y": [film.active_units[i]]})
        traces.append({"type": "scatter", "x": [i, i], "y": [-0.5, dims - 0.5]})
        traces.append({"type": "scatter", "x": [film.epochs[i]] * 2, "y": curve_range})
        return traces

    curve = [(e, v) for e, v in test_curve if np.isfinite(v)]
    values = [v for e, v in curve if e >= 0.1 * max(e for e, _ in curve)] if curve else [0, 1]
    pad = 0.08 * (max(values) - min(values) or 1)
    curve_range = [min(values) - pad, max(values) + pad]

    first = [go.Scatter(t) if t["type"] == "scatter" else go.Image(t) for t in animated(start)]
    for digit in range(10):
        first[digit].update(x=layout[start, film.labels == digit, 0], y=layout[start, film.labels == digit, 1])
    for digit in range(10):
        first[digit].update(mode="markers", name=str(digit), legendgroup="digits", legendgrouptitle_text="digit",
                            marker={"size": 5, "color": DIGIT_COLOURS[digit], "opacity": 0.8},
                            hoverinfo="skip")
        fig.add_trace(first[digit], row=1, col=1)
    fig.add_trace(first[10].update(hoverinfo="skip"), row=1, col=2)
    if two_d:
        fig.add_trace(first[11].update(hoverinfo="skip"), row=1, col=3)
    else:
        fig.add_trace(go.Scatter(x=film.epochs, y=film.active_units, mode="lines", showlegend=False,
                                 line={"color": "#555"}, hovertemplate="epoch %{x:g}: %{y} active<extra></extra>"),
                      row=1, col=3)
        fig.add_trace(first[11].update(mode="markers", showlegend=False, hoverinfo="skip",
                                       marker={"size": 10, "color": "#d62728"}), row=1, col=3)
        fig.update_yaxes(range=[-0.5, dims + 0.5], row=1, col=3)
    labels = [epoch_label(e) for e in film.epochs]
    fig.add_trace(go.Heatmap(
        z=film.kl_per_dim[:, order].T, x=np.arange(frames), y=np.arange(dims), colorscale="Viridis",
        zmin=0, colorbar={"len": 0.3, "y": 0.42, "thickness": 10, "title": {"text": "nats", "side": "right"}},
        customdata=np.broadcast_to(np.arange(frames), (dims, frames)),
        text=np.array([[f"z{d}" for _ in range(frames)] for d in order]),
        hovertemplate="%{text} at frame %{x}: %{z:.2f} nats<extra></extra>",
    ), row=2, col=2)
    cells_x, cells_y = np.meshgrid(np.arange(frames), np.arange(dims))
    fig.add_trace(go.Scatter(  # what a click on the heatmap selects (heatmap cells are not selectable points)
        x=cells_x.ravel(), y=cells_y.ravel(), mode="markers", name="heatmap cells", showlegend=False,
        marker={"size": 6, "color": "rgba(0,0,0,0)"}, customdata=cells_x.ravel()[:, None], hoverinfo="skip",
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
    ), row=2, col=2)
    first_cursor = len(fig.data)
    fig.add_trace(first[-2].update(mode="lines", line=CURSOR, showlegend=False, hoverinfo="skip"), row=2, col=2)
    step = max(1, frames // 12)
    fig.update_xaxes(tickvals=list(range(0, frames, step)), ticktext=labels[::step],
                     range=[-0.5, frames - 0.5], row=2, col=2)
    fig.update_yaxes(tickvals=list(range(dims)) if dims <= 16 else None, showticklabels=dims <= 16,
                     ticktext=[f"z{d}" for d in order] if dims <= 16 else None,
                     title_text="dimension", autorange=True, row=2, col=2)
    if curve:
        x, y = zip(*curve)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name="test −ELBO", showlegend=False,
                                 line={"color": "#2ca02c"}, marker={"size": 5},
                                 customdata=[[film.frame_at(e)] for e in x],
                                 selected={"marker": {"size": 9}}, unselected={"marker": {"opacity": 1}},
                                 hovertemplate="epoch %{x}: %{y:.2f} nats<extra></extra>"), row=3, col=2)
    fig.add_trace(first[-1].update(mode="lines", line=CURSOR, showlegend=False, hoverinfo="skip"), row=3, col=2)
    fig.update_yaxes(range=curve_range, title_text="nats", row=3, col=2)
    fig.update_xaxes(range=[-0.5, max(film.epochs[-1], 1) + 0.5], row=3, col=2)
    fig.update_xaxes(range=[lo[0] - margin[0], hi[0] + margin[0]], showticklabels=two_d, row=1, col=1)
    fig.update_yaxes(range=[lo[1] - margin[1], hi[1] + margin[1]], showticklabels=two_d, row=1, col=1)
    for col in (2, 3) if two_d else (2,):
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    fig.update_layout(height=680, margin={"l": 10, "r": 10, "t": 70, "b": 10}, legend={"itemsizing": "constant"},
                      title={"text": _film_title(film, start), "x": 0.01, "y": 0.985})

    animated_traces = list(range(10)) + [10, 11 if two_d else 12, first_cursor, len(fig.data) - 1]
    if animate and frames > 1:
        play = {"frame": {"duration": FILM_FRAME_MS, "redraw": True}, "transition": {"duration": 0},
                "fromcurrent": True, "mode": "immediate"}
        fig.update_layout(
            updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.02, "xanchor": "left",
                          "yanchor": "top", "pad": {"t": 30, "r": 10}, "showactive": False, "buttons": [
                              {"label": "▶ Play", "method": "animate", "args": [None, play]},
                              {"label": "❚❚ Pause", "method": "animate",
                               "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]},
                              {"label": "⟲ From the start", "method": "animate", "args": [None, {**play, "fromcurrent": False}]},
                              {"label": "Slow", "method": "animate",
                               "args": [None, {**play, "frame": {"duration": FILM_SLOW_FRAME_MS, "redraw": True}}]},
                          ]}],
            sliders=[{"active": start, "x": 0.36, "len": 0.64, "y": -0.02, "yanchor": "top", "pad": {"t": 30},
                      "currentvalue": {"prefix": "epoch ", "font": {"size": 13}},
                      "steps": [{"label": labels[i], "method": "animate",
                                 "args": [[str(i)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
                                                     "transition": {"duration": 0}}]} for i in range(frames)]}],
            height=760, margin={"b": 90},
        )
        fig.frame_dicts.extend({"name": str(i), "data": animated(i), "traces": animated_traces,
                                "layout": {"title": {"text": _film_title(film, i)}}} for i in range(frames))
    return fig


class AnimatedFigure(go.Figure):
    """A figure whose animation frames are kept as plain JSON-ready dicts and joined in by
    ``to_dict`` (what ``st.plotly_chart`` serialises): validating 75 frames of Plotly objects took
    most of a second, and they are right by construction."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "frame_dicts", [])  # Figure refuses unknown attributes

    def to_dict(self) -> dict:
        figure = super().to_dict()
        return {**figure, "frames": self.frame_dicts} if self.frame_dicts else figure

    def to_plotly_json(self) -> dict:
        return self.to_dict()


def _film_title(film, i: int) -> str:
    return (f"Epoch {epoch_label(film.epochs[i])} (frame {i + 1} of {film.frames}) · "
            f"{film.active_units[i]} of {film.latent_dim} dimensions active · "
            f"KL {film.kl_per_dim[i].sum():.1f} nats")


def _rounded(values: np.ndarray) -> list[float]:
    """Coordinates as a plain list, to 4 significant digits: Plotly's animation frames take no
    typed-array specs (the browser would play empty frames), and whole floats triple the JSON."""
    return [float(f"{v:.4g}") for v in values.tolist()]


def _png_url(image) -> str:
    """A grey uint8 image (or floats in [0, 1]) as a PNG data URL: a few KB instead of a pixel array."""
    import base64
    import io

    from PIL import Image

    from .images import to_uint8

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)[0]).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
