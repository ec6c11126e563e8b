"""A film as a checkpoint stores it: its frames' arrays (``Film``), checked as they are read back.

Kept apart from ``vae.film``, which records, lays out and exports films and whose command line
loads checkpoints, so that a checkpoint can hold a film without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PRIOR_SAMPLES = 16
FRAME_ARRAYS = ("epochs", "means", "logvars", "kl_per_dim", "active_units", "prior_samples", "manifold")
# Per frame, plus the test images filmed and, once laid out on request (``vae.film.tsne_layout``), the aligned
# t-SNE map.
ARRAYS = (*FRAME_ARRAYS, "indices", "labels", "tsne")
OPTIONAL = ("logvars", "manifold", "tsne")


class FilmError(ValueError):
    """A stored film cannot be shown; the message says why in words a user understands."""


@dataclass
class Film:
    """The frames of one training run, as numpy arrays: ``epochs`` [F] (the epoch at which each
    frame was taken: 0, 0.0625, ..., 1, 2, ...), ``indices`` [n] (test-set indices) and ``labels``
    [n] (indices into the dataset's label names, all 0 for an unlabelled set) of the test images
    filmed, their posterior ``means`` [F, n, d] (float16) and, for a 2-D latent, ``logvars``
    [F, n, d] (else None), ``kl_per_dim`` [F, d], ``active_units`` [F], ``prior_samples`` in
    [0, 1], [F, 16, H, W] grayscale or [F, 16, 3, H, W] colour (as a dataset holds its images), and
    ``manifold``, one picture per frame in [0, 1], [F, H, W] or [F, H, W, 3] colour, or None;
    ``tsne`` [F, n, 2], the aligned t-SNE map (``vae.film.tsne_layout``), once it has been made and stored."""

    epochs: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    means: np.ndarray
    logvars: np.ndarray | None
    kl_per_dim: np.ndarray
    active_units: np.ndarray
    prior_samples: np.ndarray
    manifold: np.ndarray | None
    tsne: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return len(self.epochs)

    @property
    def latent_dim(self) -> int:
        return self.means.shape[2]

    def frame_at(self, epoch: float) -> int:
        """The index of the frame taken nearest to ``epoch``."""
        return int(np.argmin(np.abs(self.epochs - epoch)))

    def to_state(self) -> dict:
        """Plain tensors for ``torch.save`` (loadable with ``weights_only=True``); images as uint8."""
        state = {}
        for name in ARRAYS:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("prior_samples", "manifold"):
                value = np.rint(np.clip(value, 0.0, 1.0) * 255.0).astype(np.uint8)
            state[name] = torch.from_numpy(np.ascontiguousarray(value))
        return state

    @classmethod
    def from_state(cls, state, latent_dim: int | None = None) -> Film:
        """The film stored by ``to_state``; FilmError if it is damaged or belongs to another model
        (``latent_dim`` is the model's)."""
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise FilmError("its film is not a set of arrays")
        missing = [name for name in ARRAYS if name not in state and name not in OPTIONAL]
        if missing:
            raise FilmError(f"its film lacks {', '.join(missing)}")
        arrays = {name: state[name].numpy() if name in state else None for name in ARRAYS}
        for name in ("prior_samples", "manifold"):
            if arrays[name] is not None:
                arrays[name] = arrays[name].astype(np.float32) / 255.0
        film = cls(**arrays)
        film._check(latent_dim)
        return film

    def _check(self, latent_dim: int | None) -> None:
        f, n, d = len(self.epochs), len(self.indices), self.means.shape[-1] if self.means.ndim == 3 else -1
        shapes = {"labels": (n,), "means": (f, n, d), "kl_per_dim": (f, d), "active_units": (f,)}
        if self.logvars is not None:
            shapes["logvars"] = shapes["means"]
        if self.tsne is not None:
            shapes["tsne"] = (f, n, 2)
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise FilmError(f"its film is damaged: {name} has shape {tuple(getattr(self, name).shape)}, "
                                f"not {shape}")
        if not _images_of_form(self.prior_samples, (f, PRIOR_SAMPLES)):
            raise FilmError(f"its film is damaged: its prior samples have shape {tuple(self.prior_samples.shape)}, "
                            f"not {f} frames of {PRIOR_SAMPLES} square grayscale or colour images")
        if self.manifold is not None and not _pictures_of_form(self.manifold, f):
            raise FilmError("its film is damaged: the manifold frames do not match the film's")
        if f == 0 or np.any(np.diff(self.epochs) <= 0) or not np.isfinite(self.epochs).all():
            raise FilmError("its film is damaged: its frames' epochs are not in order")
        if latent_dim is not None and self.latent_dim != latent_dim:
            raise FilmError(f"its film belongs to a model with {self.latent_dim} latent dimensions, "
                            f"not this one's {latent_dim}")
        if n == 0:
            raise FilmError("its film has no test images")
        for name in ("indices", "labels"):
            values = getattr(self, name)
            if values.dtype.kind not in "iu" or values.min() < 0:
                raise FilmError(f"its film is damaged: its test images' {name} are not whole numbers from 0")


def _images_of_form(images: np.ndarray, leading: tuple[int, ...]) -> bool:
    """Whether ``images`` are ``leading``-shaped sets of square images, [..., H, W] grayscale or
    [..., 3, H, W] colour."""
    side = images.shape[len(leading):]
    return images.shape[:len(leading)] == leading and (
        (len(side) == 2 and side[0] == side[1]) or (len(side) == 3 and side[0] == 3 and side[1] == side[2]))


def _pictures_of_form(pictures: np.ndarray, frames: int) -> bool:
    """Whether ``pictures`` are one picture per frame, [frames, H, W] grey or [frames, H, W, 3] colour."""
    return len(pictures) == frames and (pictures.ndim == 3 or (pictures.ndim == 4 and pictures.shape[3] == 3))
