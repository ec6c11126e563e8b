"""Shared fixtures: the real MNIST (loaded once) and a tmp checkpoint folder."""

from __future__ import annotations

import shutil

import pytest
from streamlit.runtime.pages_manager import PagesManager

import studio
import vae.train
from harness import BUNDLED
from harness.apptest import navigation_mode_init
from vae.data import load_mnist


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


@pytest.fixture(autouse=True)
def no_warm_up(monkeypatch):
    """No background warm-up of each test's model copy (tests/test_app_live.py turns it on)."""
    monkeypatch.setattr(studio, "WARM_UP", False)


@pytest.fixture
def job():
    """The server's training job, fresh for this test, and never left running after it."""
    studio.training_job.clear()
    job = studio.training_job()
    yield job
    job.stop()
    assert job.wait(timeout=60), "the run ends after Stop"
    studio.training_job.clear()
