"""The server's shared resources: the device, the datasets, the models on disk and which one is active.

A model file is loaded once per modification time, so a retrained file is reloaded and an
unchanged one never is, as a ``vae.checkpoint.Checkpoint`` shared by every session; ``per_model``
caches anything derived from one under its key (a hash of the file's bytes).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from pathlib import Path

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

import vae
from classroom.queue import NAME
from vae.checkpoint import Checkpoint, CheckpointError
from vae.data import Dataset
from vae.datasets import DatasetError, load_dataset
from vae.device import resolve_device
from vae.settings import settings

ACTIVE_KEY = "active_checkpoint"  # session_state: the path of the model chosen in the sidebar

# torch's thread count of this process before any script run lowered it: all cores, for training.
TRAINING_THREADS = torch.get_num_threads()


def use_one_thread() -> None:
    """Run torch on one thread in this script run (app.py calls it first thing in every run).

    A page's model work is a few passes of one image or a small batch, where a second OpenMP thread
    saves nothing but must meet the first at every operation: when the other core is busy (a
    training run, another session), every meeting waits for it, and one image's pass took 30-100 ms
    instead of under 1 ms (bench/page_latency.py). torch's count is per thread, and a new thread
    (each rerun runs on one) starts from the last count set in any thread; training sets its own
    (``studio.runs``)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@st.cache_resource(show_spinner=False)
def device() -> torch.device:
    return resolve_device("auto")


def device_label() -> str:
    """``CPU`` or ``CUDA (<GPU name>)``, for the sidebar."""
    d = device()
    return f"CUDA ({torch.cuda.get_device_name(d)})" if d.type == "cuda" else "CPU"


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def dataset(key: str) -> Dataset:
    """The dataset of ``key`` (``vae.datasets.load_dataset``), loaded once for every session."""
    return load_dataset(key, settings().data_dir)


def data_of(ckpt: Checkpoint) -> Dataset:
    """The dataset ``ckpt`` was trained on; a model whose dataset is gone is said, and the page stops."""
    try:
        return dataset(ckpt.dataset.key)
    except DatasetError as e:
        st.error(f"{ckpt.name} was trained on {ckpt.dataset.name}, which this server cannot find: {e} "
                 "Choose another model in the sidebar.")
        st.stop()


def checkpoint_dir() -> Path:
    return settings().checkpoint_dir


def data_dir() -> Path:
    return settings().data_dir


def default_checkpoint() -> Path:
    return settings().default_checkpoint


def list_checkpoints() -> list[Path]:
    """Model files in the checkpoint folder, the bundled default first, then newest first."""
    default = default_checkpoint()
    files = [p for p in checkpoint_dir().glob("*.pt") if p.is_file()]
    files.sort(key=lambda p: (p != default, -p.stat().st_mtime))
    return files


@st.cache_resource(show_spinner=False, max_entries=8)
def _load(path: str, mtime_ns: int) -> Checkpoint:
    """Keyed by file and modification time, so a retrained file is reloaded, an unchanged one never."""
    return vae.load_checkpoint(path, device=device())


def load(path: str | Path) -> Checkpoint:
    """The cached checkpoint of ``path`` (raises CheckpointError with a readable message)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    with showing("Loading model…"):
        return _load(str(path.resolve()), path.stat().st_mtime_ns)


def active_path() -> Path:
    """The model file chosen in the sidebar (this browser session), else the bundled default."""
    chosen = st.session_state.get(ACTIVE_KEY)
    return Path(chosen) if chosen and Path(chosen).is_file() else default_checkpoint()


def active() -> Checkpoint:
    """The active checkpoint; on a bad file, shows the reason and stops the page (never a traceback)."""
    try:
        return load(active_path())
    except CheckpointError as e:
        st.error(f"The model could not be loaded: {e} Choose another model in the sidebar.")
        st.stop()


def showing(message: str | None):
    """``st.spinner(message)`` in a script run (shown after Streamlit's half-second delay, so a
    cache hit shows nothing); nothing in the warm-up thread, which has no page to show it on."""
    if message is None or get_script_run_ctx(suppress_warning=True) is None:
        return contextlib.nullcontext()
    return st.spinner(message, show_time=True)


def per_model(max_entries: int, spinner: str | None = None):
    """Cache ``fn(ckpt, ...)`` once per checkpoint (its ``key``) and hashable arguments, shared by
    every session and read-only: one decorator instead of a cached twin per function. In a
    script run, ``spinner`` shows while it computes."""
    def decorate(fn):
        def by_key(_ckpt: Checkpoint, key: str, *args):  # "_ckpt": not hashed; the key stands for it
            return fn(_ckpt, *args)

        # Streamlit tells caches apart by module and qualified name; not functools.wraps, whose
        # __wrapped__ would make it read ``fn``'s parameters, and hash the model.
        by_key.__module__, by_key.__qualname__, by_key.__name__ = fn.__module__, fn.__qualname__, fn.__name__
        cached = st.cache_resource(show_spinner=False, max_entries=max_entries)(by_key)
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(ckpt: Checkpoint, *args, **kwargs):
            bound = signature.bind(ckpt, *args, **kwargs)
            bound.apply_defaults()  # f(c, "prior") and f(c, "prior", None) are one cache entry
            with showing(spinner):
                return cached(ckpt, ckpt.key, *bound.args[1:])

        call.clear = cached.clear
        return call
    return decorate


def new_checkpoint_path(name: str) -> Path:
    """Where a new model called ``name`` is saved; ValueError saying why if the name cannot be used."""
    name = name.strip()
    if not NAME.fullmatch(name):  # a model is named as a run of the queue is
        raise ValueError(
            "The name may use only letters, digits, '-' and '_' (1 to 64 characters), "
            f"got {name!r}."
        )
    folder = checkpoint_dir()
    path = folder / f"{name}.pt"
    if path.resolve().parent != folder.resolve():  # belt and braces: never leave the folder
        raise ValueError(f"The name {name!r} would save outside the checkpoint folder.")
    if path.exists():
        raise ValueError(f"A model named {name!r} already exists; choose another name.")
    return path
