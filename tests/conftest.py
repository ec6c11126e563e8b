"""Shared fixtures: the real MNIST and the bundled model (each loaded once), the training digits'
means and their vote, a tmp checkpoint folder, and Chromium for the real-browser tests."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import sync_playwright
from streamlit.runtime.pages_manager import PagesManager

from harness import BUNDLED
from harness.apptest import navigation_mode_init
from harness.browser import CHROMIUM_ARGS, require_chromium
from studio import runs
from vae import load_checkpoint
from vae.data import load_mnist
from vae.neighbours import DigitVote, cached_means
from vae.settings import configure


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def datasets(mnist):
    """A queue's dataset loader (``RunQueue(datasets=...)``) that hands out the one loaded MNIST."""
    def by_key(key: str):
        assert key == "mnist", f"these runs train on MNIST, not {key!r}"
        return mnist
    return by_key


@pytest.fixture(scope="session")
def ckpt():
    """The bundled default model's checkpoint; no test changes it, so every test shares one."""
    return load_checkpoint(BUNDLED)


@pytest.fixture(scope="session")
def model(ckpt):
    return ckpt.model


@pytest.fixture(scope="session")
def means(ckpt, mnist, tmp_path_factory):
    """The training digits' latent means under the bundled model: a minute's encoding, done once."""
    return cached_means(ckpt, mnist.train_images, tmp_path_factory.mktemp("means"))


@pytest.fixture(scope="session")
def vote(means, mnist):
    return DigitVote(means, mnist.train_labels.numpy())


@pytest.fixture(autouse=True)
def test_settings(monkeypatch):
    """The app's settings as a fresh server reads them, without the background warm-up of each
    test's model copy (tests/test_app_live.py turns it on); restored after the test."""
    monkeypatch.delenv("VAE_STUDIO_WORKERS", raising=False)
    monkeypatch.delenv("VAE_STUDIO_RAY_ADDRESS", raising=False)
    monkeypatch.delenv("VAE_STUDIO_CLASS", raising=False)
    before = configure(warm_up=False, workers="", ray_address="", class_id="", public_url="")
    yield
    configure(**vars(before))


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    """A checkpoint folder holding a copy of the bundled model, so no test touches checkpoints/."""
    shutil.copy(BUNDLED, tmp_path / "default.pt")
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))  # for the servers and commands a test starts
    configure(checkpoint_dir=tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """Make AppTest behave like a real server after its first st.navigation call."""
    monkeypatch.setattr(PagesManager, "__init__", navigation_mode_init(PagesManager.__init__))


@pytest.fixture
def run_queue(checkpoint_dir):
    """The app's queue of runs on the test's checkpoint folder, never left running after it."""
    queue = runs.queue()
    yield queue
    runs.close()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, never a downloaded browser (named so as not to shadow pytest-playwright's
    ``browser`` fixture, which would parametrise the tests by browser name)."""
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
