"""The class's rate-distortion board: every model file's point, and the runs training now, each with
who queued it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from classroom import board
from classroom.board import BoardPoint
from studio import live, runs
from studio.resources import data_dir, list_checkpoints
from vae.datasets import DatasetError, dataset_info


@st.cache_resource(show_spinner=False, max_entries=4)
def _board(files: tuple[tuple[str, int], ...]):
    return board.board([Path(path) for path, _ in files])


def model_points() -> tuple[list[BoardPoint], list[str]]:
    """(every readable VAE's point in the checkpoint folder but those of runs still training, which
    ``running_points`` shows, each with its run's owner; why each unreadable file was left out), read
    again only when a file is added or changed."""
    all_runs = runs.all_runs()
    training = {run.name for run in all_runs if run.active}
    points, problems = _board(tuple((str(p), p.stat().st_mtime_ns) for p in list_checkpoints()
                                    if p.stem not in training))
    # A file no run of the queue wrote (a bundled model, one from the command line) has no owner.
    owners = {run.name: runs.who(run) for run in all_runs}
    return [replace(point, owner=owners.get(point.name, "")) for point in points], problems


def running_points() -> list[BoardPoint]:
    """Each VAE training now, where its latest epoch put it, with the way it came and its owner."""
    points = []
    for run in runs.running():
        snap = live.snapshot(run.id)
        if not snap.config.variational:
            continue
        point = board.run_point(snap.name, snap.config.beta, snap.config.latent_dim, snap.config.data, snap.history)
        if point is not None:
            points.append(replace(point, owner=runs.who(run)))
    return points


def on_chart(points: list[BoardPoint]) -> list[BoardPoint]:
    """The points as the chart names them: a run's owner beside its name, "ada-1 · Ada" as Compare's
    picker says it, so that its label (where it fits), its hover and a click on it say whose it is; a
    file no run of this server made (a bundled model) keeps its bare name. ``chosen`` turns a clicked
    name back into the model's."""
    return [replace(p, name=f"{p.name} · {p.owner}", owner="") if p.owner else p for p in points]


def chosen(points: list[BoardPoint], clicked: str | None) -> str | None:
    """The name of the model among ``points`` whose name on the chart is ``clicked``; None for no
    click, or a point no longer on the plane."""
    return next((p.name for p, shown in zip(points, on_chart(points)) if shown.name == clicked), None)


def dataset_name(key: str) -> str:
    """What the Board calls a plane: its dataset's name; the key of one this server no longer keeps."""
    try:
        return dataset_info(key, data_dir()).name
    except DatasetError:
        return key
