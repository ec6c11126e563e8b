"""The Plotly figures of every page: built from the core's arrays and records, cached by studio."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import hex_to_rgb, sequential
from plotly.subplots import make_subplots

from vae.compare import lockstep
from vae.film import epoch_label, label_colours
from vae.history import History
from vae.images import make_grid, to_uint8
from vae.latent import ellipse, grid_points, label_centres

CURVES = ((attrgetter("loss"), "−ELBO (loss)"), (attrgetter("bce"), "Reconstruction (BCE)"),
          (attrgetter("kl"), "KL divergence"))  # each reads a StepRecord or a Scores


def loss_figure(history: History, fine_tune_from: float | None = None, max_points: int = 1500) -> go.Figure:
    """Loss, BCE and KL side by side against epochs: training by step, validation and test by epoch.
    ``history`` is a checkpoint's, or a running job's.
    The y-axes leave out the first tenth of training, whose huge early losses would flatten the rest.
    ``fine_tune_from`` (an epoch count) shades the importance-weighted epochs from there on: their
    training loss is that bound, below the -ELBO, so its curve drops there without the model's
    -ELBO doing so (``TrainConfig.fine_tune_start``). The training curve keeps about ``max_points``
    of its steps, evenly spaced."""
    steps = history.steps[:: max(1, len(history.steps) // max_points)]
    epochs = history.epochs
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in CURVES],
                        horizontal_spacing=0.06)
    series = [("train (by step)", steps, lambda r: r, {"color": "#9ecae1", "width": 1.5}, "lines"),
              ("validation", epochs, lambda r: r.val, {"color": "#ff7f0e", "width": 2}, "lines+markers"),
              ("test", epochs, lambda r: r.test, {"color": "#2ca02c", "width": 2, "dash": "dot"}, "lines+markers")]
    x_max = max([r.epoch for r in steps + epochs], default=0)
    for col, (value, _) in enumerate(CURVES, start=1):
        shown = []
        for name, rows, part, line, mode in series:
            points = [(r.epoch, value(part(r))) for r in rows if part(r) is not None]
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

FILM_FRAME_MS = 20  # Play: asks for 50 frames/s; drawing a frame takes some 20-30 ms more (bench/film.py)
FILM_SLOW_FRAME_MS = 250  # Slow: 4 frames/s, to follow single digits
CONTROLS_PX = 150  # under the plots: the player's buttons, then its scrubber, each across the whole width
CURSOR = {"color": "#222", "width": 2, "dash": "dot"}
LOSS_COLOURS = {"training": "#6baed6", "test": "#2ca02c"}  # the film's -ELBO curves, named in their panel's title
MAP_NAMES = {"pca": "PCA", "tsne": "t-SNE"}  # the film map's layouts (vae.film.LAYOUTS)


class _FilmTrace(NamedTuple):
    """One trace of the film figure, on subplot (row, col); ``frame(i)`` is its update for frame
    ``i`` as a plain dict (75 frames of validated Plotly objects took seconds to build), None for a
    trace every frame leaves as it is."""
    trace: go.Scatter | go.Heatmap
    row: int
    col: int
    frame: Callable[[int], dict] | None = None


def film_figure(film, layout, label_names: tuple[str, ...], test_curve=(), start: int | None = None,
                animate: bool = True, method: str = "pca", agreement: tuple | None = None,
                first_epoch=()) -> go.Figure:
    """The training film as one Plotly figure: the images' latent map (coloured by ``label_names``), the 16
    prior samples, the manifold (2-D latents) or the active-unit count, the KL of each dimension
    by frame (dimensions sorted by their final KL, so the collapsed ones sit together at the
    bottom; drawn as a picture) and below it, on the same frame axis, the -ELBO; dotted cursors mark the
    frame shown. With ``animate``, Play/Pause and a scrubber labelled by epoch play it in the browser
    (Plotly animation frames: no server round trip per frame). ``layout`` is
    ``vae.film.film_layout(film)``; ``test_curve`` (epoch, test -ELBO) pairs, ``first_epoch``
    (epoch, -ELBO) of training batches through epoch 1; ``start`` the frame shown first (default:
    the last), from which Play runs on. ``method`` names the map's layout ("pca" or "tsne");
    ``agreement``, if given, is the share of digits whose nearest neighbours share their label, per
    frame, (in the latent, on the map), written in each frame's caption. Clicking a cell of the
    heatmap or a point of the curve selects customdata [frame index].

    Frames play without a full redraw, which took 150-250 ms a frame in headless Chromium; without
    one, only scatter traces and the layout images placed on axes (not on the paper or an axis
    domain) change. So the pictures are such images and the frame's caption is a text trace."""
    frames, two_d = film.frames, film.latent_dim == 2
    start = frames - 1 if start is None else int(np.clip(start, 0, frames - 1))
    fig = _film_subplots(two_d, method, len(film.indices))
    picture_axes = [fig.get_subplot(1, col) for col in ((2, 3) if two_d else (2,))]
    kl_traces, heat_map = _kl_panel(fig, film, start)  # the heat map itself is a layout image
    moving = _add_panels(fig, [_digits_panel(fig, film, layout, start, agreement, label_names),
                               _picture_panels(fig, picture_axes),
                               [] if two_d else _active_units_panel(fig, film, start),
                               kl_traces,
                               _loss_curve_panel(fig, film, test_curve, first_epoch, start),
                               _label_legend(label_names)])

    def pictures(i: int) -> list[dict]:
        """The prior samples (and manifold) of frame ``i`` as layout images on their subplots' axes."""
        grids = [make_grid(film.prior_samples[i], ncol=4, pad=1)] + ([film.manifold[i]] if two_d else [])
        return [_axes_image(grid, axes) for grid, axes in zip(grids, picture_axes)]

    images = [pictures(i) for i in range(frames)] if animate else {start: pictures(start)}
    fig.update_layout(height=680, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"itemsizing": "constant"},
                      images=[heat_map] + images[start])
    if animate and frames > 1:
        fig.update_layout(height=680 + CONTROLS_PX, margin={"b": CONTROLS_PX})
        labels = [epoch_label(e) for e in film.epochs]
        fig.layout_extras.update(_player_controls(labels, start, FILM_FRAME_MS, "▶ Play", slow=True))
        traces, unchanged = _drawn_each_frame(fig, [index for index, _ in moving])
        fig.frame_dicts.extend({"name": str(i), "data": [frame(i) for _, frame in moving] + unchanged,
                                "traces": traces, "layout": {"images": [heat_map] + images[i]}}
                               for i in range(frames))
    return fig


def _film_subplots(two_d: bool, method: str, images: int) -> go.Figure:
    """The film's grid: the map down the left (of ``images`` test images), the pictures beside it,
    the heat map and the curve below them, as an ``AnimatedFigure``."""
    fig = make_subplots(
        figure=AnimatedFigure(), rows=3, cols=3, column_widths=[0.46, 0.27, 0.27], row_heights=[0.42, 0.33, 0.25],
        specs=[[{"rowspan": 3}, {}, {}], [None, {"colspan": 2}, None], [None, {"colspan": 2}, None]],
        subplot_titles=[f"{images} test images" + (" (raw latent)" if two_d else f" ({MAP_NAMES[method]}, aligned)"),
                        "16 prior samples", "Grid over [-3, 3]²" if two_d else "Active dimensions",
                        "KL per dimension, by frame (epoch)",
                        "−ELBO (log scale): " + ", ".join(f"<span style='color:{colour}'>{name}</span>"
                                                         for name, colour in LOSS_COLOURS.items())],
        horizontal_spacing=0.07, vertical_spacing=0.1,
    )
    return fig.update_annotations(font_size=12)  # the titles fit side by side in a narrow column (Train's)


def _add_panels(fig: go.Figure, panels: list[list[_FilmTrace]]) -> list[tuple[int, Callable[[int], dict]]]:
    """Adds the panels' traces in order and returns (trace index, update of frame i) of those that
    move: the one place the animation frames' trace indices come from."""
    moving = []
    for panel in panels:
        for part in panel:
            fig.add_trace(part.trace, row=part.row, col=part.col)
            if part.frame is not None:
                moving.append((len(fig.data) - 1, part.frame))
    return moving


def _digits_panel(fig: go.Figure, film, layout: np.ndarray, start: int, agreement: tuple | None,
                  label_names: tuple[str, ...] = ()) -> list[_FilmTrace]:
    """The digits on the frame's map, each label's name at the middle of its digits (so that the map
    reads without telling colours apart), with the frame's caption in its top left corner, on axes that
    hold every frame's digits (bar the outermost 0.5%), so the map stays still while they move."""
    lo, hi = np.percentile(layout.reshape(-1, 2), [0.5, 99.5], axis=0)
    margin = 0.06 * (hi - lo) + 1e-6
    # The top has room for the caption's two lines, or three with the agreement.
    top = (6 if agreement else 4) * margin[1]
    x_range, y_range = [lo[0] - margin[0], hi[0] + margin[0]], [lo[1] - margin[1], hi[1] + top]
    fig.update_xaxes(range=x_range, showticklabels=film.latent_dim == 2, row=1, col=1)
    fig.update_yaxes(range=y_range, showticklabels=film.latent_dim == 2, row=1, col=1)

    def digits(i: int) -> dict:
        return {"type": "scatter", "x": _rounded(layout[i, :, 0]), "y": _rounded(layout[i, :, 1])}

    def caption(i: int) -> dict:
        return {"type": "scatter", "text": [_film_title(film, i, agreement)]}

    def names(i: int) -> dict:
        _, middles = label_centres(layout[i], film.labels)
        return {"type": "scatter", "x": _rounded(middles[:, 0]), "y": _rounded(middles[:, 1])}

    colours = label_colour_of(film.labels)  # one trace for all digits: each trace costs a frame time
    panel = [_FilmTrace(go.Scatter(digits(start), mode="markers", name="digits", showlegend=False, hoverinfo="skip",
                                   marker={"size": 5, "color": colours, "opacity": 0.8}), 1, 1, digits),
             _FilmTrace(go.Scatter(caption(start), x=[x_range[0]], y=[y_range[1]], mode="text",
                                   textposition="bottom right", showlegend=False, hoverinfo="skip",
                                   textfont={"size": 12}), 1, 1, caption)]
    if label_names:  # an unlabelled set has no names to write
        text = [f"<b>{label_names[k]}</b>" for k in np.unique(film.labels)]
        panel.append(_FilmTrace(go.Scatter(names(start), mode="text", text=text, showlegend=False, hoverinfo="skip",
                                           textfont={"size": 13, "color": "#111"}), 1, 1, names))
    return panel


def _picture_panels(fig: go.Figure, picture_axes: list) -> list[_FilmTrace]:
    """The hidden, square [0, 1] axes that the prior samples (and manifold) are drawn on as layout
    images, each with an invisible point that keeps it drawn."""
    holders = []
    for col, axes in zip((2, 3), picture_axes):
        holders.append(_FilmTrace(go.Scatter(x=[0.5], y=[0.5], mode="markers", marker={"opacity": 0},
                                             showlegend=False, hoverinfo="skip"), 1, col))
        fig.update_xaxes(visible=False, range=[0, 1], row=1, col=col)
        fig.update_yaxes(visible=False, range=[0, 1], scaleanchor=axes.xaxis.plotly_name.replace("axis", ""),
                         row=1, col=col)
    return holders


def _active_units_panel(fig: go.Figure, film, start: int) -> list[_FilmTrace]:
    """Active dimensions by epoch, a dot on the frame's: where a 2-D latent shows its manifold, a
    larger one shows how many of its dimensions it uses."""
    fig.update_yaxes(range=[-0.5, film.latent_dim + 0.5], row=1, col=3)

    def dot(i: int) -> dict:
        return {"type": "scatter", "x": [film.epochs[i]], "y": [int(film.active_units[i])]}

    return [_FilmTrace(go.Scatter(x=film.epochs, y=film.active_units, mode="lines", showlegend=False,
                                  line={"color": "#555"}, hovertemplate="epoch %{x:g}: %{y} active<extra></extra>"),
                       1, 3),
            _FilmTrace(go.Scatter(dot(start), mode="markers", showlegend=False, hoverinfo="skip",
                                  marker={"size": 10, "color": "#d62728"}), 1, 3, dot)]


def _kl_panel(fig: go.Figure, film, start: int) -> tuple[list[_FilmTrace], dict]:
    """Each dimension's KL by frame, the largest final KL in the top row, with a cursor on the
    frame's column; its traces and the heat map itself, a layout image on its axes."""
    frames, dims = film.frames, film.latent_dim
    order = np.argsort(-film.kl_per_dim[-1], kind="stable")  # dimensions by final KL, largest on top
    labels = [epoch_label(e) for e in film.epochs]
    # The heatmap is a picture on its axes, not a heatmap trace: an animation frame that moves a
    # trace redraws the plot without its heatmaps, which then vanished. A tiny heatmap keeps the colour bar.
    kl = film.kl_per_dim[:, order].T  # [dims, frames], the largest final KL in the top row
    heat_x, heat_y = (axis.plotly_name.replace("axis", "") for axis in (fig.get_subplot(2, 2).xaxis,
                                                                        fig.get_subplot(2, 2).yaxis))
    heat_map = {"source": _png_url(_viridis(kl / max(float(kl.max()), 1e-9))), "xref": heat_x, "yref": heat_y,
                "x": -0.5, "y": dims - 0.5, "sizex": frames, "sizey": dims, "xanchor": "left",
                "yanchor": "top", "sizing": "stretch", "layer": "below"}
    colour_bar = go.Heatmap(z=[[0, float(kl.max())]], x=[-10, -9], y=[-10, -9], colorscale="Viridis", zmin=0,
                            hoverinfo="skip", colorbar={"len": 0.3, "y": 0.42, "thickness": 10,
                                                        "title": {"text": "nats", "side": "right"}})
    # What a click on the heatmap selects: a transparent marker per frame across its middle; with no
    # hover cut-off a click anywhere picks the nearest one, the column under it. Plotly draws only one
    # of them (maxdisplayed) yet hovers and selects them all: every animation frame redraws this trace
    # (_drawn_each_frame), and drawing the 148 markers it had cost 3 of a frame's 25 ms of CPU.
    columns = np.arange(frames)
    column_picks = go.Scatter(
        x=columns, y=np.full(frames, (dims - 1) / 2), mode="markers", name="heatmap columns", showlegend=False,
        marker={"color": "rgba(0,0,0,0)", "maxdisplayed": 1}, customdata=columns[:, None],
        text=[f"epoch {labels[i]}: {film.active_units[i]} active, KL {film.kl_per_dim[i].sum():.1f} nats"
              for i in columns], hovertemplate="%{text}<extra>click to open</extra>",
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
    )
    fig.update_layout(hoverdistance=-1)  # the curve's nearest point, too, wherever its panel is clicked
    fig.update_xaxes(**_frame_axis(film), row=2, col=2)
    fig.update_yaxes(tickvals=list(range(dims - 1, -1, -1)) if dims <= 16 else None, showticklabels=dims <= 16,
                     ticktext=[f"z{d}" for d in order] if dims <= 16 else None, showgrid=False,
                     range=[-0.5, dims - 0.5], row=2, col=2)

    def cursor(i: int) -> dict:
        return {"type": "scatter", "x": [i, i], "y": [-0.5, dims - 0.5]}

    return [_FilmTrace(colour_bar, 2, 2), _FilmTrace(column_picks, 2, 2),
            _FilmTrace(go.Scatter(cursor(start), mode="lines", line=CURSOR, showlegend=False, hoverinfo="skip"),
                       2, 2, cursor)], heat_map


def _frame_axis(film) -> dict:
    """The x-axis of the heat map and of the curve below it: a column per frame, labelled by epoch,
    so their cursors line up and epoch 1's frames, where most of the change is, get room."""
    step = max(1, film.frames // 12)
    return {"tickvals": list(range(0, film.frames, step)), "ticktext": [epoch_label(e) for e in film.epochs][::step],
            "range": [-0.5, film.frames - 0.5]}


def _loss_curve_panel(fig: go.Figure, film, test_curve, first_epoch, start: int) -> list[_FilmTrace]:
    """The -ELBO on the frames' axis: the training batches' through epoch 1, where the film's first
    frames are and it falls from the untrained model's ~550 nats, then the test -ELBO by epoch
    (finite points; clicking one opens its frame), on a log scale, where that fall and the slow
    gains after it both show; with a cursor on the frame shown. The panel's title names the curves
    in their colours: a legend inside it covered one curve or the other."""
    fig.update_xaxes(**_frame_axis(film), row=3, col=2)
    # (name, its points, colour, marker size, how its epochs read)
    series = [("training batches", first_epoch, LOSS_COLOURS["training"], 3, lambda e: f"{e:.2f}"),
              ("test −ELBO", test_curve, LOSS_COLOURS["test"], 5, epoch_label)]
    series = [(name, [(e, v) for e, v in points if np.isfinite(v) and v > 0], *rest) for name, points, *rest in series]
    values = [v for _, points, *_ in series for _, v in points] or [1.0, 10.0]
    curve_range = [min(values) / 1.05, max(values) * 1.05]
    fig.update_yaxes(type="log", range=np.log10(curve_range).tolist(), row=3, col=2)

    def cursor(i: int) -> dict:
        return {"type": "scatter", "x": [i, i], "y": curve_range}

    traces = []
    for name, points, colour, size, label in series:
        if points:
            epochs, y = zip(*points)
            traces.append(_FilmTrace(go.Scatter(
                x=np.interp(epochs, film.epochs, np.arange(film.frames)), y=y, mode="lines+markers", name=name,
                showlegend=False, line={"color": colour}, marker={"size": size},
                customdata=[[film.frame_at(e)] for e in epochs], text=[label(e) for e in epochs],
                selected={"marker": {"size": 9}}, unselected={"marker": {"opacity": 1}},
                hovertemplate=f"epoch %{{text}}: %{{y:.1f}} nats<extra>{name}</extra>"), 3, 2))
    return traces + [_FilmTrace(go.Scatter(cursor(start), mode="lines", line=CURSOR, showlegend=False,
                                           hoverinfo="skip"), 3, 2, cursor)]


def _label_legend(label_names: tuple[str, ...]) -> list[_FilmTrace]:
    """The legend of the map's colours, a trace with no point per label: the map draws all images as
    one trace. None for an unlabelled set, whose images share one colour."""
    return [_FilmTrace(go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgrouptitle_text="label",
                                  legendgroup="digits", marker={"size": 8, "color": colour}), 1, 1)
            for name, colour in zip(label_names, label_colours(len(label_names)))]


def label_colour_of(labels: np.ndarray) -> np.ndarray:
    """Each label's colour ([n] labels -> [n] colours), from a palette as wide as the labels seen."""
    return np.array(label_colours(int(labels.max()) + 1))[labels]


def _player_controls(labels: list[str], start: int, frame_ms: int, play_label: str, slow: bool) -> dict:
    """Play/Pause/From the start (and Slow) buttons and a scrubber labelled by epoch, playing the
    figure's frames "0", "1", ... without a full redraw, as plain layout dicts."""
    play = {"frame": {"duration": frame_ms, "redraw": False}, "transition": {"duration": 0},
            "fromcurrent": True, "mode": "immediate"}
    buttons = [{"label": play_label, "method": "animate", "args": [None, play]},
               {"label": "❚❚ Pause", "method": "animate",
                "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]},
               {"label": "⟲ From the start", "method": "animate", "args": [None, {**play, "fromcurrent": False}]}]
    if slow:
        buttons.append({"label": "Slow", "method": "animate",
                        "args": [None, {**play, "frame": {"duration": FILM_SLOW_FRAME_MS, "redraw": False}}]})
    step = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    # The scrubber below the buttons, not beside them: side by side they overlapped in a narrow column.
    return {"updatemenus": [{"type": "buttons", "direction": "left", "x": 0.0, "y": 0, "xanchor": "left",
                             "yanchor": "top", "pad": {"t": 30, "r": 10}, "showactive": False, "buttons": buttons}],
            "sliders": [{"active": start, "x": 0.0, "len": 1.0, "y": 0, "yanchor": "top", "pad": {"t": 70},
                         "currentvalue": {"prefix": "epoch ", "font": {"size": 13}},
                         "steps": [{"label": label, "method": "animate", "args": [[str(i)], step]}
                                   for i, label in enumerate(labels)]}]}


def _drawn_each_frame(fig: go.Figure, moving: list[int]) -> tuple[list[int], list[dict]]:
    """The traces each animation frame names: the ``moving`` ones, then every other scatter trace that
    takes hovers and clicks, with empty updates (also returned). A frame played without a full
    redraw recomputes every trace's calcdata but draws only the traces it names, and drawing is what
    puts a trace's SVG node (and its markers' radii, which hovers measure from) into calcdata: after
    Play or one scrubber step, a click on a trace left out threw inside plotly.js (no node to show
    the selection on) or found nothing, so the film took no clicks."""
    still = [i for i, trace in enumerate(fig.data) if i not in moving and trace.type == "scatter"
             and trace.hoverinfo != "skip" and any(x is not None for x in trace.x)]  # legend entries have no point
    return moving + still, [{"type": "scatter"}] * len(still)


def _axes_image(picture: np.ndarray, axes, layer: str = "above") -> dict:
    """A layout image filling the subplot ``axes`` (whose ranges are [0, 1]), placed on its axes:
    the kind of image an animation frame can change without a full redraw."""
    return {"source": _png_url(picture), "xref": axes.xaxis.plotly_name.replace("axis", ""),
            "yref": axes.yaxis.plotly_name.replace("axis", ""), "x": 0, "y": 1, "sizex": 1, "sizey": 1,
            "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": layer}


class AnimatedFigure(go.Figure):
    """A figure whose animation frames and controls are kept as plain JSON-ready dicts and joined in
    by ``to_dict`` (what ``st.plotly_chart`` serialises): validating 75 frames of Plotly objects took
    most of a second, and they are right by construction."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "frame_dicts", [])  # Figure refuses unknown attributes
        object.__setattr__(self, "layout_extras", {})

    def to_dict(self) -> dict:
        figure = super().to_dict()
        if self.layout_extras:
            figure["layout"] = {**figure["layout"], **self.layout_extras}
        return {**figure, "frames": self.frame_dicts} if self.frame_dicts else figure

    def to_plotly_json(self) -> dict:
        return self.to_dict()


def _film_title(film, i: int, agreement: tuple | None = None) -> str:
    """Frame ``i``'s caption, in short lines that fit a narrow map (the Train page's)."""
    title = (f"Epoch {epoch_label(film.epochs[i])} (frame {i + 1} of {film.frames})<br>"
             f"{film.active_units[i]} of {film.latent_dim} dimensions active<br>KL {film.kl_per_dim[i].sum():.1f} nats")
    if agreement is None:
        return title
    in_latent, on_map = agreement
    where = f"{in_latent[i]:.0%} in {film.latent_dim}-D" + ("" if film.latent_dim == 2 else f", {on_map[i]:.0%} here")
    return f"{title}<br>same-digit neighbours:<br>{where}"


def _rounded(values: np.ndarray) -> list[float]:
    """Coordinates as a plain list, to 4 decimals: Plotly's animation frames take no
    typed-array specs (the browser would play empty frames), and whole floats triple the JSON."""
    return np.round(values.astype(np.float64), 4).tolist()


def _viridis(values: np.ndarray, cell: int = 6) -> np.ndarray:
    """Values in [0, 1] [H, W] as an RGB picture in Plotly's Viridis scale, each value a cell x cell block."""
    stops = np.array([hex_to_rgb(c) for c in sequential.Viridis], dtype=np.float64)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    rgb = stops[low] + (position - low)[..., None] * (stops[low + 1] - stops[low])
    return np.rint(rgb).astype(np.uint8).repeat(cell, axis=0).repeat(cell, axis=1)


def _png_url(image) -> str:
    """A grey uint8 image (or floats in [0, 1]) as a PNG data URL: a few KB instead of a pixel array."""
    buffer = io.BytesIO()
    picture = image if image.ndim == 3 else to_uint8(image)[0]  # RGB, or grey
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ---------------------------------------------------------------- two models side by side

PAIR_COLOURS = ("#1f77b4", "#d62728")  # model A, model B


def compare_curves_figure(curves: dict, x: str = "epoch") -> go.Figure:
    """Test -ELBO of several models on one chart; ``curves`` maps a name to ``vae.compare.elbo_curve``'s
    (epochs, seconds, -ELBO); ``x`` is "epoch" or "time" (quality against training time is the fair
    comparison of a slow model and a fast one)."""
    fig = go.Figure()
    for (name, (epochs, seconds, loss)), colour in zip(curves.items(), PAIR_COLOURS * len(curves)):
        fig.add_scatter(x=epochs if x == "epoch" else seconds, y=loss, mode="lines+markers", name=name,
                        line={"color": colour}, marker={"size": 4},
                        hovertemplate=f"{name}: %{{y:.2f}} nats at %{{x:.4g}}<extra></extra>")
    # The y-axis leaves out each model's first epoch, whose high loss would flatten the rest.
    shown = [loss[1:] if len(loss) > 1 else loss for _, _, loss in curves.values()]
    values = np.concatenate(shown) if shown else np.array([])
    if len(values):
        low, high = float(values.min()), float(values.max())
        fig.update_yaxes(range=[low - 0.05 * (high - low + 1), high + 0.05 * (high - low + 1)])
    fig.update_layout(height=330, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.1},
                      xaxis_title="epoch" if x == "epoch" else "training time (s), evaluation included",
                      yaxis_title="test −ELBO (nats)")
    return fig


def _name_clusters(fig: go.Figure, coords: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...]) -> None:
    """Each label's name at the middle of its points (their median), so that a map reads without
    telling ten colours apart; an unlabelled set has no names to write."""
    if not label_names:
        return
    for label, (x, y) in zip(*label_centres(coords, labels)):
        fig.add_annotation(x=float(x), y=float(y), text=f"<b>{label_names[label]}</b>", showarrow=False,
                           font={"size": 13, "color": "#111"}, bgcolor="rgba(255, 255, 255, 0.75)", borderpad=1)


def digits_map_figure(coords: np.ndarray, labels: np.ndarray, indices: np.ndarray, label_names: tuple[str, ...],
                      marked: int | None = None, axis_titles: tuple[str, str] = ("", "")) -> go.Figure:
    """Test images on a 2-D map, coloured by label (one colour when unlabelled), clickable (custom_data
    [test index]); the image ``marked`` (a test index) gets a ring, so a selection can be shown on
    several maps at once."""
    fig = go.Figure()
    names = label_names or ("test image",)
    for label, (name, colour) in enumerate(zip(names, label_colours(len(names)))):
        rows = np.flatnonzero(labels == label)
        fig.add_scatter(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name,
                        marker={"size": 5, "color": colour, "opacity": 0.75},
                        customdata=indices[rows][:, None], unselected={"marker": {"opacity": 0.75}},
                        hovertemplate=_label_hover(name) + "test #%{customdata[0]}<extra></extra>")
    where = np.flatnonzero(indices == marked) if marked is not None else []
    if len(where):
        fig.add_scatter(x=coords[where, 0], y=coords[where, 1], mode="markers", name="chosen", hoverinfo="skip",
                        marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2.5}})
    _name_clusters(fig, coords, labels, label_names)
    fig.update_layout(height=430, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"itemsizing": "constant"},
                      xaxis_title=axis_titles[0], yaxis_title=axis_titles[1])
    return fig


def lockstep_film_figure(films: dict, layouts: dict, method: str = "pca") -> go.Figure:
    """Two films played on one clock (``vae.compare.lockstep``): each model's digit map and prior
    samples side by side; ``films`` and ``layouts`` map the two models' names to their film and
    ``vae.film.film_layout`` by ``method``. Plays in the browser like ``film_figure``."""
    (name_a, film_a), (name_b, film_b) = films.items()
    epochs, frames_a, frames_b = lockstep(film_a, film_b)
    shown = {name: "raw latent" if film.latent_dim == 2 else MAP_NAMES[method] for name, film in films.items()}
    fig = make_subplots(figure=AnimatedFigure(), rows=2, cols=2, row_heights=[0.68, 0.32],
                        subplot_titles=[f"{name_a}: {len(film_a.indices)} test images ({shown[name_a]})",
                                        f"{name_b}: {len(film_b.indices)} test images ({shown[name_b]})",
                                        f"{name_a}: 16 prior samples", f"{name_b}: 16 prior samples"],
                        vertical_spacing=0.08, horizontal_spacing=0.06)
    sides = [(name_a, film_a, layouts[name_a], frames_a, 1), (name_b, film_b, layouts[name_b], frames_b, 2)]
    picture_axes = [fig.get_subplot(2, col) for col in (1, 2)]

    def moving(step: int) -> list[dict]:
        return [{"type": "scatter", "x": _rounded(layout[frames[step], :, 0]),
                 "y": _rounded(layout[frames[step], :, 1])} for _, _, layout, frames, _ in sides]

    def pictures(step: int) -> list[dict]:
        return [_axes_image(make_grid(film.prior_samples[frames[step]], ncol=8, pad=1), axes)
                for (_, film, _, frames, _), axes in zip(sides, picture_axes)]

    start = 0
    for (_, film, layout, _, col), trace in zip(sides, moving(start)):
        fig.add_trace(go.Scatter(x=trace["x"], y=trace["y"], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker={"size": 5, "color": label_colour_of(film.labels), "opacity": 0.8}),
                      row=1, col=col)
        lo, hi = np.percentile(layout.reshape(-1, 2), [0.5, 99.5], axis=0)
        pad = 0.06 * (hi - lo) + 1e-6
        fig.update_xaxes(range=[lo[0] - pad[0], hi[0] + pad[0]], showticklabels=False, row=1, col=col)
        fig.update_yaxes(range=[lo[1] - pad[1], hi[1] + pad[1]], showticklabels=False, row=1, col=col)
    for col in (1, 2):
        fig.add_trace(go.Scatter(x=[0.5], y=[0.5], mode="markers", marker={"opacity": 0}, showlegend=False,
                                 hoverinfo="skip"), row=2, col=col)
        fig.update_xaxes(visible=False, range=[0, 1], row=2, col=col)
        fig.update_yaxes(visible=False, range=[0, 1], row=2, col=col)
    labels = [epoch_label(e) for e in epochs]
    fig.update_layout(height=530 + CONTROLS_PX, margin={"l": 10, "r": 10, "t": 40, "b": CONTROLS_PX},
                      images=pictures(start))
    fig.layout_extras.update(_player_controls(labels, start, FILM_FRAME_MS * 3, "▶ Play both", slow=False))
    traces, unchanged = _drawn_each_frame(fig, [0, 1])
    fig.frame_dicts.extend({"name": str(i), "data": moving(i) + unchanged, "traces": traces,
                            "layout": {"images": pictures(i)}} for i in range(len(epochs)))
    return fig


# ---------------------------------------------------------------- the Latent map page's map
# Each point's kind is the first number of its custom_data: [MAP_GRID, x, y], [MAP_TEST, test index,
# label] or [MAP_DRAWING, 0, 0]. Numbers only: numeric arrays reach the browser as typed arrays; 2,625
# small lists took most of a click's server time to copy and serialise (bench/page_latency.py).
MAP_GRID, MAP_TEST, MAP_DRAWING = 0, 1, 2
MAP_DRAWING_TARGET = "your drawing (click target)"  # the trace that takes clicks on the drawing's star
POSTERIOR_SIGMAS = (1.0, 2.0)  # contours of the drawing's q(z|x) drawn around its star


def _label_hover(name: str) -> str:
    """A point's hover text before its test number: "digit 7 · ", "cat · "."""
    return f"digit {name} · " if name.isdigit() else f"{name} · "


def latent_map_figure(proj, indices: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...],
                      grid_side: int = 0, drawing_xy=None, drawing_covariance=None,
                      components: np.ndarray | None = None) -> go.Figure:
    """Test images on a ``vae.latent.Projection``'s map, coloured by label (``label_names``; one
    colour for an unlabelled set, whose names are empty, with its training means' mixture
    ``components``, their centres' map positions [k, 2], marked as where its kinds lie); a ``grid_side`` x
    ``grid_side`` grid of faint clickable locations underneath (0: none); the last drawing as a
    star, ringed by its posterior's 1σ and 2σ contours when ``drawing_covariance`` (the map-plane
    covariance [2, 2]) is given."""
    fig = go.Figure()
    if grid_side:
        grid = grid_points(*proj.extent(), grid_side)
        fig.add_scatter(
            x=grid[:, 0], y=grid[:, 1], mode="markers", name="grid", showlegend=False,
            marker={"size": 5, "color": "rgba(120, 120, 120, 0.18)"},
            selected={"marker": {"size": 12, "color": "rgba(60, 60, 60, 0.9)"}},
            unselected={"marker": {"opacity": 1.0}},
            customdata=np.column_stack([np.full(len(grid), MAP_GRID, grid.dtype), grid]),
            hovertemplate="decode here (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    names = label_names or ("test image",)
    for label, (name, colour) in enumerate(zip(names, label_colours(len(names)))):
        rows = np.flatnonzero(labels == label)
        kind = _label_hover(name) if label_names else ""
        fig.add_scatter(
            x=proj.coords[rows, 0], y=proj.coords[rows, 1], mode="markers", name=name,
            marker={"size": 5, "color": colour, "opacity": 0.8},
            selected={"marker": {"size": 14, "opacity": 1.0}}, unselected={"marker": {"opacity": 0.6}},
            customdata=np.column_stack([np.full(len(rows), MAP_TEST), indices[rows], np.full(len(rows), label)]),
            hovertemplate=kind + "test #%{customdata[1]}<extra></extra>",
        )
    if components is not None:
        fig.add_scatter(x=components[:, 0], y=components[:, 1], mode="markers+text", name="mixture components",
                        text=[str(k + 1) for k in range(len(components))], textposition="top center",
                        marker={"symbol": "x", "size": 10, "color": "#222"}, hoverinfo="skip")
    _name_clusters(fig, proj.coords, labels, label_names)
    include = _add_drawing(fig, drawing_xy, drawing_covariance) if drawing_xy is not None else []
    # The view takes in the drawing too: an odd one can land far outside the test digits.
    (x0, x1), (y0, y1) = proj.extent(pad=0.08, include=np.vstack(include) if include else [])
    fig.update_layout(
        height=620, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="label" if label_names else "",
        legend={"itemsizing": "constant"}, xaxis={"range": [x0, x1]}, yaxis={"range": [y0, y1]},
    )
    return fig


def _add_drawing(fig: go.Figure, drawing_xy, drawing_covariance) -> list[np.ndarray]:
    """The drawing as a star that takes the clicks near it, ringed by its posterior's contours when
    ``drawing_covariance`` is given; returns the points the view must take in."""
    outlines = []
    if drawing_covariance is not None:
        for sigmas in POSTERIOR_SIGMAS:
            outline = ellipse(drawing_xy, drawing_covariance, sigmas)
            outlines.append(outline)
            fig.add_scatter(
                x=outline[:, 0], y=outline[:, 1], mode="lines", name=f"{sigmas:g}σ of q(z|x)",
                legendgroup="drawing", hoverinfo="skip",
                line={"color": "#b8860b", "width": 2.0 if sigmas == 1 else 1.2,
                      "dash": "solid" if sigmas == 1 else "dash"},
            )
    star = {"x": [drawing_xy[0]], "y": [drawing_xy[1]], "mode": "markers", "legendgroup": "drawing"}
    fig.add_scatter(
        **star, name="your drawing", hoverinfo="skip",
        marker={"symbol": "star", "size": 18, "color": "#ffd700", "line": {"color": "black", "width": 1.5}},
        unselected={"marker": {"opacity": 1.0}},  # stays in full view while a digit is selected
    )
    # What a click picks: Plotly measures from each marker's edge, but counts a click inside a
    # marker as 1 - 3/radius, so small markers win, and a later trace wins a tie. A click on the
    # big star would go to any digit within ~4 px of its centre; this transparent marker of the
    # smallest size, drawn last, takes every click near the star's centre.
    fig.add_scatter(
        **star, name=MAP_DRAWING_TARGET, showlegend=False,
        marker={"size": 6, "color": "rgba(0, 0, 0, 0)"},
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
        customdata=[[MAP_DRAWING, 0, 0]], hovertemplate="your drawing<extra></extra>",
    )
    return outlines + [np.reshape(drawing_xy, (1, 2))]


# ---------------------------------------------------------------- how good are a sampler's samples

SAMPLER_COLOURS = {"prior": "#9e9e9e", "mixture": "#1f77b4", "digit": "#2ca02c"}


def sample_quality_figure(qualities: dict, label_names: tuple[str, ...]) -> go.Figure:
    """Grouped bars: the share of each digit among a sampler's samples, as the k-NN vote reads
    them, one group per digit and one bar per sampler; ``qualities`` maps a sampler's label to
    (its SAMPLER_COLOURS kind, its ``vae.samplers.SampleQuality``). The legend gives each sampler's
    mean vote share, how confidently its samples are recognised."""
    fig = go.Figure()
    for label, (kind, quality) in qualities.items():
        fig.add_bar(x=list(label_names), y=quality.digit_shares, marker_color=SAMPLER_COLOURS[kind],
                    name=f"{label} · votes {quality.confidence:.0%} for the leading digit",
                    hovertemplate="%{y:.1%} recognised as %{x}<extra>" + label + "</extra>")
    fig.update_layout(barmode="group", height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis_title="recognised as", yaxis={"title": "share of the samples", "tickformat": ".0%"},
                      legend={"orientation": "h", "y": -0.3})
    return fig


# ---------------------------------------------------------------- inside the model: one digit's numbers

# Collapsed dimensions are grey at 4.6:1 on white (graphics need 3:1), and differ by more than colour:
# an open diamond against a filled dot, hatched bars against plain ones.
USED, COLLAPSED, PRIOR_BAND = "#1f77b4", "#757575", "rgba(120, 120, 120, 0.14)"


def _dimension_axis(fig: go.Figure, order: np.ndarray, row: int | None = None) -> None:
    """The x-axis of a per-dimension chart: one category per latent dimension, in ``order``."""
    labels = [f"z{j}" for j in order]
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels, tickangle=-90,
                     tickfont={"size": 9 if len(order) > 24 else 11}, row=row, col=1 if row else None)


def posterior_figure(mu: np.ndarray, sigma: np.ndarray | None, order: np.ndarray, used: np.ndarray,
                     ordered_by: str = "the model's KL") -> go.Figure:
    """Each latent dimension's posterior q(z_j|x): its mean μ_j as a dot with a ±σ_j bar, over the
    prior's 0 ± 1 as a grey band, dimensions in ``order`` (the model's own KL, largest first);
    dimensions the model does not use (``used`` False) grey, and named so in the legend."""
    fig = go.Figure()
    fig.add_hrect(y0=-1, y1=1, fillcolor=PRIOR_BAND, line_width=0, layer="below",
                  annotation_text="prior N(0, 1): 0 ± 1", annotation_position="top left")
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    for is_used, name, colour, symbol in ((True, "used dimension: μ ± σ", USED, "circle"),
                                          (False, "collapsed: sits at the prior, μ ≈ 0, σ ≈ 1", COLLAPSED,
                                           "diamond-open")):
        dims = [j for j in order if bool(used[j]) == is_used]
        if not dims:
            continue
        error = {"type": "data", "array": sigma[dims], "thickness": 2, "width": 3, "color": colour} \
            if sigma is not None else None
        fig.add_scatter(x=[f"z{j}" for j in dims], y=mu[dims], mode="markers", name=name, error_y=error,
                        marker={"size": 8 if is_used else 10, "color": colour, "symbol": symbol,
                                "line": {"width": 2, "color": colour}},
                        customdata=np.column_stack([dims, sigma[dims] if sigma is not None else mu[dims] * 0]),
                        hovertemplate="z%{customdata[0]}: μ %{y:.3f}"
                                      + (", σ %{customdata[1]:.3f}" if sigma is not None else "") + "<extra></extra>")
    _dimension_axis(fig, order)
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="value",
                      legend={"orientation": "h", "y": 1.12}, xaxis_title=f"latent dimension (by {ordered_by})")
    return fig


def reparameterisation_figure(mu: np.ndarray, sigma: np.ndarray, eps: np.ndarray, z: np.ndarray,
                              order: np.ndarray) -> go.Figure:
    """z = μ + σ·ε, one column per latent dimension (in ``order``), five aligned rows with their
    numbers: μ and σ from the encoder, the drawn ε, the sample's offset σ·ε and their sum z; blue
    below zero, red above."""
    rows = np.stack([mu[order], sigma[order], eps[order], (sigma * eps)[order], z[order]])
    limit = max(float(np.abs(rows).max()), 1e-6)
    fig = go.Figure(go.Heatmap(
        z=rows, x=[f"z{j}" for j in order], y=["μ", "σ", "ε", "σ·ε", "z = μ + σ·ε"], colorscale="RdBu",
        reversescale=True, zmin=-limit, zmax=limit, text=[[f"{v:.2f}" for v in row] for row in rows],
        texttemplate="%{text}", textfont={"size": 8 if len(order) > 24 else 10},
        hovertemplate="%{x}, %{y}: %{z:.3f}<extra></extra>", showscale=False, xgap=1, ygap=2))
    fig.update_yaxes(autorange="reversed")
    _dimension_axis(fig, order)
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def bce_figure(x: np.ndarray, probs: np.ndarray, bce_per_pixel: np.ndarray) -> go.Figure:
    """Where the reconstruction loss is paid: each pixel's −[x log x' + (1 − x) log(1 − x')] as a
    heat map over the image (summed over a colour image's channels); hovering a pixel gives x, x'
    (their mean over the channels, for colour) and its term."""
    if x.ndim == 3:  # colour [3, H, W]: one heat map cell per pixel
        x, probs = x.mean(axis=0), probs.mean(axis=0)
    fig = go.Figure(go.Heatmap(
        z=bce_per_pixel, colorscale="Reds", zmin=0, customdata=np.stack([x, probs], axis=-1),
        hovertemplate="pixel (%{y}, %{x}): x %{customdata[0]:.2f}, x' %{customdata[1]:.3f}, "
                      "BCE %{z:.3f} nats<extra></extra>", colorbar={"title": {"text": "nats", "side": "right"},
                                                                 "thickness": 10}))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    return fig


def kl_bars_figure(kl_per_dim: np.ndarray, order: np.ndarray, used: np.ndarray, chosen: int | None) -> go.Figure:
    """Each latent dimension's KL(q(z_j|x) || N(0, 1)) as a bar (in ``order``); the ``chosen``
    dimension outlined and pointed at. A click selects customdata [dimension]: each column has a faint
    full-height bar behind it, so a collapsed dimension's bar of height 0 can be clicked too."""
    colours = [USED if used[j] else COLLAPSED for j in order]
    hatches = ["" if used[j] else "/" for j in order]
    lines = [2.5 if j == chosen else 0 for j in order]
    labels = [f"z{j}" for j in order]
    top = max(float(kl_per_dim[order].max()), 1e-3) * 1.05
    fig = go.Figure(go.Bar(x=labels, y=np.full(len(order), top), marker={"color": "rgba(0, 0, 0, 0.03)"},
                           customdata=order[:, None], showlegend=False, hoverinfo="skip"))
    fig.add_bar(x=labels, y=kl_per_dim[order], marker={"color": colours, "line": {"color": "#d62728", "width": lines},
                                                       "pattern": {"shape": hatches, "fgcolor": "#ffffff"}},
                customdata=order[:, None], showlegend=False,
                hovertemplate="%{x}: KL %{y:.3f} nats<extra>click for its formula</extra>")
    if chosen in order:
        fig.add_annotation(x=f"z{chosen}", y=float(kl_per_dim[chosen]), text=f"z{chosen}", showarrow=True,
                           arrowhead=2, arrowcolor="#d62728", ax=0, ay=-28, font={"color": "#222", "size": 11},
                           bgcolor="rgba(255, 255, 255, 0.85)")
    _dimension_axis(fig, order)
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="KL (nats)",
                      barmode="overlay", xaxis_title="latent dimension (grey, hatched: collapsed)",
                      clickmode="event+select")
    return fig


# ---------------------------------------------------------------- why variational: q(z|x) and p(z|x)

Q_COLOUR, MODE_COLOUR, PROBE_COLOUR = "#b8860b", "#ffffff", "#d62728"
PLANE_CLICK_STEPS = 36  # per axis of the invisible points that take a click on the plane


def posterior_plane_figure(grid, probe_z=None, axis_names=("z₁", "z₂")) -> go.Figure:
    """The true posterior p(z|x) as a heat map over ``grid`` (a ``vae.posterior.PosteriorGrid``),
    q(z|x)'s 1σ and 2σ ellipses over it, the posterior's modes, and ``probe_z`` (two coordinates)
    as a red cross. Invisible points over the plane take clicks: customdata [z1, z2]."""
    density = np.exp(grid.log_density)
    fig = go.Figure(go.Heatmap(
        x=grid.z1, y=grid.z2, z=density / density.max(), colorscale="Viridis", zmin=0, zmax=1, zsmooth="best",
        colorbar={"title": {"text": "p(z|x)", "side": "right"}, "thickness": 10, "tickvals": [0, 1],
                  "ticktext": ["0", "peak"]},
        hovertemplate=f"{axis_names[0]} %{{x:.3f}}, {axis_names[1]} %{{y:.3f}}<extra>true posterior</extra>"))
    for sigmas in POSTERIOR_SIGMAS:
        outline = ellipse(grid.q_mean, grid.q_cov, sigmas)
        fig.add_scatter(x=outline[:, 0], y=outline[:, 1], mode="lines", name=f"q(z|x): {sigmas:g}σ",
                        hoverinfo="skip", line={"color": Q_COLOUR, "width": 2.5 if sigmas == 1 else 1.5,
                                                "dash": "solid" if sigmas == 1 else "dash"})
    fig.add_scatter(x=[grid.q_mean[0]], y=[grid.q_mean[1]], mode="markers", name="q's mean μ", hoverinfo="skip",
                    marker={"symbol": "circle", "size": 8, "color": Q_COLOUR, "line": {"color": "black", "width": 1}})
    fig.add_scatter(x=grid.modes[:, 0], y=grid.modes[:, 1], mode="markers", name="posterior's modes",
                    hoverinfo="skip", marker={"symbol": "x", "size": 11, "color": MODE_COLOUR,
                                              "line": {"color": "black", "width": 1}})
    # A square view on equal axes, so q's ellipse and the posterior keep their true shapes; outside
    # the grid the posterior has no mass, so the background is the colour scale's zero.
    (x0, x1), (y0, y1) = grid.extent
    half = max(x1 - x0, y1 - y0) / 2
    (x0, x1), (y0, y1) = ((x0 + x1) / 2 - half, (x0 + x1) / 2 + half), ((y0 + y1) / 2 - half, (y0 + y1) / 2 + half)
    click = grid_points((x0, x1), (y0, y1), PLANE_CLICK_STEPS)
    fig.add_scatter(x=click[:, 0], y=click[:, 1], mode="markers", showlegend=False, name="click",
                    marker={"size": 14, "color": "rgba(0, 0, 0, 0)"}, customdata=click,
                    selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
                    hovertemplate="set z here: (%{x:.3f}, %{y:.3f})<extra></extra>")
    if probe_z is not None:
        fig.add_scatter(x=[probe_z[0]], y=[probe_z[1]], mode="markers", name="your z", hoverinfo="skip",
                        marker={"symbol": "cross", "size": 13, "color": PROBE_COLOUR,
                                "line": {"color": "white", "width": 1}})
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10}, clickmode="event+select",
                      plot_bgcolor=sequential.Viridis[0], legend={"orientation": "h", "y": -0.16},
                      xaxis={"title": axis_names[0], "range": [x0, x1], "showgrid": False},
                      yaxis={"title": axis_names[1], "range": [y0, y1], "scaleanchor": "x",
                             "showgrid": False})
    return fig


def latent_overview_figure(means: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...], grid,
                           axis_names=("z₁", "z₂")) -> go.Figure:
    """The whole plane: the prior N(0, I)'s 1, 2 and 3σ circles, the test digits' means [n, 2]
    coloured by label, q's mean, and the box the zoomed view shows."""
    fig = go.Figure()
    for radius in (1, 2, 3):
        circle = ellipse((0.0, 0.0), np.eye(2), radius)
        fig.add_scatter(x=circle[:, 0], y=circle[:, 1], mode="lines", hoverinfo="skip", showlegend=radius == 1,
                        name="prior N(0, I): 1, 2, 3σ", legendgroup="prior", line={"color": "#888", "width": 1})
    names = label_names or ("test image",)
    for label, (name, colour) in enumerate(zip(names, label_colours(len(names)))):
        rows = labels == label
        fig.add_scatter(x=means[rows, 0], y=means[rows, 1], mode="markers", name=name, legendgroup="digits",
                        marker={"size": 3, "color": colour, "opacity": 0.5},
                        hovertemplate=f"{_label_hover(name)}a test image<extra></extra>")
    (x0, x1), (y0, y1) = grid.extent
    fig.add_scatter(x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", name="the zoomed view",
                    hoverinfo="skip", line={"color": "black", "width": 2})
    fig.add_scatter(x=[grid.q_mean[0]], y=[grid.q_mean[1]], mode="markers", name="this digit's μ", hoverinfo="skip",
                    marker={"symbol": "star", "size": 14, "color": "#ffd700", "line": {"color": "black", "width": 1}})
    reach = max(4.0, float(np.abs(means).max()) * 1.05)
    fig.update_layout(height=430, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"itemsizing": "constant"},
                      xaxis={"title": axis_names[0], "range": [-reach, reach]},
                      yaxis={"title": axis_names[1], "range": [-reach, reach], "scaleanchor": "x"})
    return fig


def bounds_figure(bounds: dict, exact: float | None = None, elbo: float | None = None) -> go.Figure:
    """The importance-weighted bounds on log p(x), one bar per sample count K (K = 1: the ELBO),
    as −log p(x) in nats (lower is tighter); ``exact`` (a 2-D latent's quadrature) as a line. Below
    them the gap KL(q(z|x) ‖ p(z|x)) = log p(x) − ELBO as a bar of its own, from −log p(x) to −ELBO
    (``elbo``, else the K = 1 bound): exact with ``exact``, else a lower bound from the largest K."""
    ks = list(bounds)
    fig = go.Figure(go.Bar(
        y=[f"K = {k}" + (" (ELBO)" if k == 1 else "") for k in ks], x=[-bounds[k] for k in ks], orientation="h",
        marker={"color": ["#9e9e9e"] + ["#1f77b4"] * (len(ks) - 1)}, text=[f"{-bounds[k]:.2f}" for k in ks],
        textposition="inside", insidetextanchor="end", hovertemplate="%{y}: −log p(x) ≤ %{x:.3f} nats<extra></extra>"))
    values = [-v for v in bounds.values()] + ([-exact] if exact is not None else [])
    lo, hi = min(values), max(values)
    if exact is not None:
        fig.add_vline(x=-exact, line={"color": "#d62728", "width": 2, "dash": "dash"},
                      annotation_text=f"−log p(x) = {-exact:.2f}", annotation_position="top right",
                      annotation={"yanchor": "bottom"})  # above the plot: the gap's row is at the bottom
    _add_gap_bar(fig, bounds, exact, elbo)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10 if exact is None else 30, "b": 10},
                      showlegend=False, barmode="overlay",  # the gap's bar on a row of its own, not grouped
                      xaxis={"title": "−log p(x) bound (nats; lower is tighter)",
                             "range": [lo - 0.8 * (hi - lo) - 0.5, hi + 0.15 * (hi - lo) + 0.2]})
    return fig


GAP_ROW = "KL(q ‖ p(z|x))"


def _add_gap_bar(fig: go.Figure, bounds: dict, exact: float | None, elbo: float | None) -> None:
    """The gap as a red bar spanning −log p(x) to −ELBO on a row of its own, its value written to
    its left (the bars above leave room there); without ``exact`` log p(x) is the largest K's
    bound, which lies below it, so the gap is written as "≥"."""
    k = max(bounds)
    top = exact if exact is not None else bounds[k]
    gap = top - (bounds[1] if elbo is None else elbo)
    label = f"gap = {gap:.2f} nats" if exact is not None else f"gap ≥ {gap:.2f} nats, from K = {k}"
    fig.add_trace(go.Bar(
        y=[GAP_ROW], x=[gap], base=[-top], orientation="h", width=0.5, marker={"color": "#d62728"},
        hovertemplate=f"{label}: the ELBO falls this far below log p(x)<extra></extra>"))
    fig.add_annotation(x=-top, y=GAP_ROW, text=label, showarrow=False, xanchor="right", xshift=-4,
                       font={"color": "#d62728"})


def sigma_scan_figure(scan, chosen: float) -> go.Figure:
    """The ELBO against the factor q's σ is scaled by, the encoder's own σ (1×), the best factor
    and the ``chosen`` one marked; at 0 the KL, and so the −ELBO, is infinite."""
    fig = go.Figure()
    fig.add_scatter(x=scan.scales, y=scan.elbo, mode="lines", name="ELBO", line={"color": "#1f77b4", "width": 2.5},
                    hovertemplate="σ × %{x:.2f}: ELBO %{y:.2f} nats<extra></extra>")
    best = int(np.argmax(scan.elbo))
    own = int(np.argmin(np.abs(scan.scales - 1.0)))
    fig.add_scatter(x=[scan.scales[own]], y=[scan.elbo[own]], mode="markers", name="the encoder's σ (1×)",
                    marker={"size": 11, "color": Q_COLOUR, "line": {"color": "black", "width": 1}}, hoverinfo="skip")
    fig.add_scatter(x=[scan.scales[best]], y=[scan.elbo[best]], mode="markers", name=f"best: σ × {scan.best_scale:g}",
                    marker={"symbol": "diamond", "size": 11, "color": "#2ca02c"}, hoverinfo="skip")
    fig.add_vline(x=chosen, line={"color": PROBE_COLOUR, "width": 1.5, "dash": "dot"})
    top, low = float(scan.elbo.max()), float(np.percentile(scan.elbo, 15))
    span = top - low
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h", "y": -0.3},
                      xaxis={"title": "q's σ scaled by", "range": [0, 2.02]},
                      yaxis={"title": "ELBO (nats)", "range": [low - 0.1 * span, top + 0.12 * span + 0.5]})
    return fig


# ---------------------------------------------------------------- the class's rate-distortion board

LATENT_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon"]
# Labels are placed in pixels of the plot area, which is at least about this size: its height is the
# figure's less its margins, axis titles and legend; its width follows the page. Distances only grow
# on a larger one, and labels keep their distance from their points, so they stay apart there too.
BOARD_PLOT_PX = (600, 380)
BOARD_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)  # nats between the −ELBO diagonals
CHAR_PX, LINE_PX = 6, 16  # a label's character and line, as Chromium draws Plotly's text
# A marker's half width (size 13 and its outline), which is also how far Plotly sets a point's text
# from its centre (radius / 0.8 + 1).
MARKER_PX = 9


# Where a name may sit beside its point, in order of preference: (x side, y side), each -1, 0 or +1
# (above, below, right, left, then the corners).
LABEL_SIDES = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


class Label(NamedTuple):
    """A point's name as drawn: its text, where it sits from the point (Plotly annotation anchors and
    shifts in px), and its box in px of the plot area."""

    text: str
    anchor: dict
    box: tuple[float, float, float, float]


def _overlaps(box, boxes) -> bool:
    """Whether ``box`` overlaps one of ``boxes`` by more than a pixel each way (boxes that touch do not)."""
    x0, y0, x1, y1 = box
    return any(min(x1, b[2]) - max(x0, b[0]) > 1 and min(y1, b[3]) - max(y0, b[1]) > 1 for b in boxes)


def _inside(box) -> bool:
    width, height = BOARD_PLOT_PX
    return box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height


def _marker_box(x: float, y: float) -> tuple[float, float, float, float]:
    return x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX


def _same_place(centres: list[tuple[float, float]]) -> list[list[int]]:
    """The points' indices grouped by place: each joins the first group whose first point's marker its
    own marker overlaps (runs with the same settings and seed land on one spot), else starts one."""
    groups = []
    for i, centre in enumerate(centres):
        group = next((g for g in groups if _overlaps(_marker_box(*centre), [_marker_box(*centres[g[0]])])), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    return groups


def _name_labels(centres: list[tuple[float, float]], names: list[str], taken: list) -> list[Label | None]:
    """Each point's label, or None. The points of one place share a label, the first one's name
    "+N more"; it goes on the first side of the point (``LABEL_SIDES``) where it stays in the plot and
    covers nothing in ``taken`` (boxes in px: the markers, and the labels placed before it, which it
    extends); where no side is free it is left out: every name shows on hover and in the page's table."""
    labels: list[Label | None] = [None] * len(centres)
    m, h = MARKER_PX, LINE_PX
    for group in _same_place(centres):
        (x, y), text = centres[group[0]], names[group[0]] + (f" +{len(group) - 1} more" if len(group) > 1 else "")
        w = CHAR_PX * len(text)
        for sx, sy in LABEL_SIDES:
            x0 = x - w / 2 if sx == 0 else x + m if sx > 0 else x - m - w
            y0 = y - h / 2 if sy == 0 else y + m if sy > 0 else y - m - h
            box = (x0, y0, x0 + w, y0 + h)
            if _inside(box) and not _overlaps(box, taken):
                anchor = {"xanchor": ("right", "center", "left")[sx + 1], "xshift": sx * m,
                          "yanchor": ("top", "middle", "bottom")[sy + 1], "yshift": sy * m}
                labels[group[0]] = Label(text, anchor, box)
                taken.append(box)
                break
    return labels


def _diagonals(x_lo: float, x_max: float, y_lo: float, y_hi: float, taken: list) -> tuple[np.ndarray, list[dict]]:
    """(the −ELBO of each diagonal that crosses the plane, their labels as Plotly annotation arguments). A
    diagonal is labelled once, where it leaves the plane: just below where it meets the right edge, or
    just right of where it meets the bottom one; the step is the smallest that keeps those labels
    apart along both edges, and a label that would cover anything in ``taken`` (boxes in px, which
    it extends) is left out."""
    width, height = BOARD_PLOT_PX
    x_scale, y_scale = width / (x_max - x_lo), height / (y_hi - y_lo)  # px per nat
    widest = CHAR_PX * len("−ELBO 1000")
    step = next((s for s in BOARD_STEPS if s * y_scale >= 2 * LINE_PX and s * x_scale >= widest + 2 * CHAR_PX),
                BOARD_STEPS[-1])
    levels, labels = np.arange(np.floor(y_lo / step) * step + step, x_max + y_hi, step), []
    for level in levels:
        text = f"−ELBO {level:g}"
        w = CHAR_PX * len(text)
        if level - x_max >= y_lo:  # it leaves by the right edge
            x, y = x_max, level - x_max
            bottom = (y - y_lo) * y_scale
            box, anchor = (width - w, bottom - LINE_PX, width, bottom), {"xanchor": "right", "yanchor": "top"}
        else:  # by the bottom edge
            x, y = level - y_lo, y_lo
            left = (x - x_lo) * x_scale
            box, anchor = (left, 0, left + w, LINE_PX), {"xanchor": "left", "yanchor": "bottom"}
        if _inside(box) and not _overlaps(box, taken):
            taken.append(box)
            labels.append({"x": x, "y": y, "text": text, **anchor})
    return levels, labels


def _hover(point, here: list[str]) -> str:
    """A point's details, and the other names on its place."""
    owner = f" · {html.escape(point.owner)}" if point.owner else ""
    also = f"<br>Here too: {', '.join(here)}" if here else ""
    return (f"<b>{point.name}</b>{' (training)' if point.training else ''}{owner}<br>β = {point.beta:g}, "
            f"latent size {point.latent_dim}<br>rate {point.rate:.2f} + distortion {point.distortion:.2f} = "
            f"−ELBO {point.negative_elbo:.2f} nats{also}")


def board_figure(points, running=(), hidden: int = 0) -> go.Figure:
    """Models as points on the rate-distortion plane (``classroom.board.BoardPoint``): x the rate (KL), y
    the distortion (BCE), faint diagonals of equal −ELBO labelled at the edge, colour by log β, a
    symbol per latent size; ``running`` runs drawn with the trail of their epochs. Names go where they
    cover no point and no other label, the best models' first, one per place; every detail is on
    hover. ``hidden``: how many points the page left out, said above the plane. A click selects
    customdata [name]."""
    everything = sorted([*points, *running], key=attrgetter("negative_elbo", "name"))
    fig = go.Figure()
    if not everything:
        return fig
    rates = [p.rate for p in everything] + [r for p in running for r, _ in p.trail]
    distortions = [p.distortion for p in everything] + [d for p in running for _, d in p.trail]
    margin = 5 + 0.06 * (max(distortions) - min(distortions))  # room for the top point's name above it
    x_max, y_lo, y_hi = max(rates) * 1.15 + 1, min(distortions) - margin, max(distortions) + margin
    x_lo = -0.02 * x_max  # a point at rate 0 (an untrained run) whole
    width, height = BOARD_PLOT_PX
    centres = [((p.rate - x_lo) / (x_max - x_lo) * width, (p.distortion - y_lo) / (y_hi - y_lo) * height)
               for p in everything]
    taken = [_marker_box(*centre) for centre in centres]
    # β is also written beside a name when it is not 1: the colour scale alone would leave it to colour.
    names = [p.name + (f" · β {p.beta:g}" if p.beta != 1 else "") + (" (training)" if p.training else "")
             for p in everything]
    labels = _name_labels(centres, names, taken)
    here = {i: [everything[j].name for j in group if j != i] for group in _same_place(centres) for i in group}
    levels, diagonal_labels = _diagonals(x_lo, x_max, y_lo, y_hi, taken)
    for level in levels:
        fig.add_scatter(x=[x_lo, x_max], y=[level - x_lo, level - x_max], mode="lines", hoverinfo="skip",
                        showlegend=False, line={"color": "rgba(0,0,0,0.08)", "width": 1})
    for label in diagonal_labels:
        fig.add_annotation(**label, showarrow=False, font={"size": 9, "color": "rgba(0,0,0,0.45)"})
    for p, label in zip(everything, labels):
        if label:
            fig.add_annotation(x=p.rate, y=p.distortion, text=label.text, showarrow=False, **label.anchor)
    for p in running:
        fig.add_scatter(x=[r for r, _ in p.trail], y=[d for _, d in p.trail], mode="lines+markers",
                        line={"color": "#999", "dash": "dot"}, marker={"size": 4, "color": "#999"},
                        hoverinfo="skip", showlegend=False)
    sizes = sorted({p.latent_dim for p in everything})
    limit = max(1.0, max(abs(float(np.log2(p.beta))) for p in everything))
    ticks = list(range(-int(limit), int(limit) + 1))
    for size in sizes:
        group = [i for i, p in enumerate(everything) if p.latent_dim == size]
        fig.add_scatter(
            x=[everything[i].rate for i in group], y=[everything[i].distortion for i in group], mode="markers",
            name=f"latent {size}",
            marker={"size": 13, "symbol": LATENT_SYMBOLS[sizes.index(size) % len(LATENT_SYMBOLS)],
                    "color": [float(np.log2(everything[i].beta)) for i in group], "colorscale": "RdBu",
                    "reversescale": True, "cmin": -limit, "cmax": limit, "line": {"color": "black", "width": 1},
                    "showscale": size == sizes[0],
                    "colorbar": {"title": {"text": "β", "side": "top"}, "thickness": 10, "len": 0.6,
                                 "tickvals": ticks, "ticktext": [f"{2.0 ** v:g}" for v in ticks]}},
            customdata=[[everything[i].name] for i in group],
            hovertext=[_hover(everything[i], here[i]) for i in group], hovertemplate="%{hovertext}<extra></extra>")
    if hidden:
        fig.add_annotation(text=f"{hidden} untrained run{'s' if hidden > 1 else ''} hidden: the table below lists "
                                f"{'them' if hidden > 1 else 'it'}", xref="paper", yref="paper", x=0, y=1,
                           xanchor="left", yanchor="bottom", showarrow=False, font={"size": 12, "color": "#666"})
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 30 if hidden else 10, "b": 10},
                      legend={"orientation": "h", "y": -0.15},
                      xaxis={"title": "rate: KL (nats per image)", "range": [x_lo, x_max]},
                      yaxis={"title": "distortion: BCE (nats per image)", "range": [y_lo, y_hi]})
    return fig
