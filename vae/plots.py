"""Plotly figures of a training history, shared by the app's pages and usable from Python."""

from __future__ import annotations

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
