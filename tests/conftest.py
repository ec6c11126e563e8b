"""Shared fixtures: the real MNIST (loaded once) and a tmp checkpoint folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamlit.runtime.pages_manager import PagesManager

import studio
import vae.train
from apptest_helpers import navigation_mode_init
from vae.data import load_mnist

BUNDLED = Path(__file__).resolve().parent.parent / "checkpoints" / "default.pt"


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    """A checkpoint folder holding a copy of the bundled model, so no test touches checkpoints/."""
    shutil.copy(BUNDLED, tmp_path / "default.pt")
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(vae.train, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(studio, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(studio, "DEFAULT_CHECKPOINT", tmp_path / "default.pt")
    return tmp_path


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """Make AppTest behave like a real server after its first st.navigation call."""
    monkeypatch.setattr(PagesManager, "__init__", navigation_mode_init(PagesManager.__init__))
