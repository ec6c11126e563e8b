"""Digit grids and upscaling (vae/images.py)."""

import numpy as np

from vae.images import make_grid, upscale


def test_make_grid_and_upscale():
    images = np.random.default_rng(0).random((5, 28, 28))
    grid = make_grid(images, ncol=3, pad=1, scale=2)
    assert grid.dtype == np.uint8 and grid.shape == (2 * (2 * 29 + 1), 2 * (3 * 29 + 1))
    assert grid[0, 0] == 64  # padding
    assert make_grid(images[:, None]).shape == (30, 5 * 29 + 1)  # [N,1,H,W]; one row by default
    big = upscale(np.array([[0, 255]], np.uint8), 3)
    assert big.shape == (3, 6) and (big[:, :3] == 0).all() and (big[:, 3:] == 255).all()
