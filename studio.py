"""App-wide state shared by every page: the cached model and data, and the active-model choice.

Pages import this module and call ``vae/`` for everything else; nothing here does modelling.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

import vae
from training_job import TrainingJob
from vae.checkpoint import CheckpointError
from vae.train import CHECKPOINT_DIR, resolve_device

DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
ACTIVE_KEY = "active_checkpoint"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def list_checkpoints() -> list[Path]:
    """Model files in ``checkpoints/``, the bundled default first, then newest first."""
    files = [p for p in CHECKPOINT_DIR.glob("*.pt") if p.is_file()]
    files.sort(key=lambda p: (p != DEFAULT_CHECKPOINT, -p.stat().st_mtime))
    return files


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


@st.cache_resource(show_spinner=False)
def training_job() -> TrainingJob:
    """One job per server: every browser session watches (and may stop) the same run."""
    return TrainingJob()


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


# ---------------------------------------------------------------- views shared by pages

CURVES = (("loss", "−ELBO (loss)"), ("bce", "Reconstruction (BCE)"), ("kl", "KL divergence"))


def loss_figure(history: dict) -> go.Figure:
    """Loss, BCE and KL side by side against epochs: training by step, validation and test by epoch.
    ``history`` is a checkpoint's (or the running job's) ``{"steps": [...], "epochs": [...]}``."""
    steps = history.get("steps", [])[:: max(1, len(history.get("steps", [])) // 1500)]
    epochs = history.get("epochs", [])
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in CURVES],
                        horizontal_spacing=0.06)
    series = [("train (by step)", steps, lambda r: r, "#9ecae1", "lines"),
              ("validation", epochs, lambda r: r.get("val") or {}, "#ff7f0e", "lines+markers"),
              ("test", epochs, lambda r: r.get("test") or {}, "#2ca02c", "lines+markers")]
    for col, (key, _) in enumerate(CURVES, start=1):
        for name, rows, part, color, mode in series:
            points = [(r["epoch"], part(r)[key]) for r in rows if key in part(r)]
            if points:
                x, y = zip(*points)
                fig.add_trace(go.Scatter(x=x, y=y, name=name, mode=mode, legendgroup=name,
                                         line={"color": color, "width": 1.5}, showlegend=col == 1),
                              row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="nats per image", row=1, col=1)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def image_grid(images: np.ndarray, scale: int = 3, pad: int = 2) -> np.ndarray:
    """Tile ``[rows, cols, H, W]`` floats in [0, 1] into one uint8 image with light gaps, scaled up
    by whole pixels (nearest neighbour, so digits stay crisp instead of blurring)."""
    rows, cols, h, w = images.shape
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 235, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            grid[top:top + h, left:left + w] = np.clip(images[r, c] * 255, 0, 255).astype(np.uint8)
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)
