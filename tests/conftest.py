"""Shared fixtures: the real MNIST (loaded once) and a tmp checkpoint folder."""

from __future__ import annotations

import pytest

from vae.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()
