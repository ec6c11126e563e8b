"""Images as crisp pixel art: tile many into one grid and scale up by whole pixels.

Browsers blur small images when they scale them, so pages compose and enlarge grids here
(nearest-neighbour) and hand ``st.image`` a finished uint8 array.
"""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(images) -> np.ndarray:
    """Images as uint8 [N, H, W] grey or [N, H, W, 3] colour, as pictures are shown: accepts
    [N,1,H,W], [N,3,H,W] or [N,H,W] (or one [H,W]) tensors or arrays, float in [0, 1] or already uint8."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    a = np.asarray(images)
    if a.ndim == 4:
        a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    elif a.ndim == 2:
        a = a[None]
    if a.dtype == np.uint8:
        return a
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge by an integer factor, each pixel becoming a scale x scale block."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image


def picture(image, scale: int) -> np.ndarray:
    """One image as uint8 [H, W] or [H, W, 3], enlarged ``scale`` times: [H, W], [C, H, W] or any
    batch of one that ``to_uint8`` takes."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3):  # one [C, H, W] image, a colour one included
        a = a[None]
    return upscale(to_uint8(a)[0], scale)


def make_grid(images, ncol: int | None = None, pad: int = 1, scale: int = 1, pad_value: int = 64) -> np.ndarray:
    """Tile images row by row into one uint8 array (grey, or colour for colour images), ``pad``
    pixels of ``pad_value`` between cells (and around), then scale up nearest-neighbour. ``ncol``
    defaults to all in one row; a short last row is filled with padding."""
    tiles = to_uint8(images)
    n, h, w = tiles.shape[:3]
    ncol = max(1, min(ncol or n, n))
    nrow = -(-n // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, *tiles.shape[3:]), pad_value, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = tile
    return upscale(grid, scale)
