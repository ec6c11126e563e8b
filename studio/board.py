"""The class's rate-distortion board: every model file's point, and the runs training now."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from classroom import board
from classroom.board import BoardPoint
from studio import live, runs
from studio.resources import list_checkpoints


@st.cache_resource(show_spinner=False, max_entries=4)
def _board(files: tuple[tuple[str, int], ...]):
    return board.board([Path(path) for path, _ in files])


def model_points() -> tuple[list[BoardPoint], list[str]]:
    """(every readable VAE's point in the checkpoint folder but those of runs still training, which
    ``running_points`` shows; why each unreadable file was left out), read again only when a file is
    added or changed."""
    training = {run.name for run in runs.all_runs() if run.active}
    return _board(tuple((str(p), p.stat().st_mtime_ns) for p in list_checkpoints() if p.stem not in training))


def running_points() -> list[BoardPoint]:
    """Each VAE training now, where its latest epoch put it, with the way it came."""
    snaps = [live.snapshot(run.id) for run in runs.running()]
    points = [board.run_point(s.name, s.config.beta, s.config.latent_dim, s.history) for s in snaps
              if s.config.variational]
    return [p for p in points if p is not None]
