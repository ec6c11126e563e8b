"""Which digit a latent looks like: a k-nearest-neighbour vote among the 60,000 training digits'
posterior means, which are computed once per model and kept on disk.

The vote needs no classifier of its own: a VAE trained without labels still places digits of
one kind near each other, so the labels of a drawing's nearest training digits say what the
model takes it for, and how split they are says how sure it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import latent
from .checkpoint import Checkpoint
from .data import default_data_dir
from .files import kept_arrays

VOTERS = 8  # nearest training digits that vote on a drawing
SURE_FROM = 5  # votes the leading digit needs (of VOTERS) for a verdict rather than "unsure"
FAR_QUANTILE = 0.995  # a latent further from every training digit than this share of them is "far"


# ---------------------------------------------------------------- the training digits' means


def default_cache_dir() -> Path:
    """Where the app and ``python -m vae.generate`` keep the training digits' means."""
    return default_data_dir() / "means"


def images_digest(images) -> str:
    """A short hash of an image set's bytes and shape, so a cache names the images it encodes."""
    a = np.ascontiguousarray(images.numpy() if isinstance(images, torch.Tensor) else images)
    return hashlib.sha256(a.tobytes() + repr((a.shape, str(a.dtype))).encode()).hexdigest()[:16]


def cached_means(ckpt: Checkpoint, images, cache_dir: str | Path | None, progress=None) -> np.ndarray:
    """Posterior means [N, d] of ``images`` under the checkpoint's model, kept in ``cache_dir`` as a
    .npz that names the model file's hash and the images' hash inside it (``vae.files.kept_arrays``):
    a damaged, foreign or missing one is encoded again (``progress(done, total)`` per batch)."""
    key = f"{ckpt.key}-{images_digest(images)}"
    path = Path(cache_dir) / f"means-{key}.npz" if cache_dir is not None else None
    return kept_arrays(path, key, {"mu": (len(images), ckpt.model.latent_dim)},
                       lambda: {"mu": latent.encode(ckpt.model, images, progress=progress)[0]})["mu"]


# ---------------------------------------------------------------- the vote


@dataclass(frozen=True)
class Verdict:
    """The vote on one latent: how many of its ``len(neighbours)`` nearest training digits are
    each digit, and whether that makes a verdict."""

    votes: np.ndarray  # [10] neighbours of each digit
    labels: np.ndarray  # [k] the neighbours' digits, nearest first
    neighbours: np.ndarray  # [k] training indices, nearest first
    distances: np.ndarray  # [k] Euclidean distances in latent space
    far: bool  # further from every training digit than almost all training digits are from theirs

    @property
    def ranked(self) -> list[int]:
        """Digits with at least one vote, most votes first (ties: the nearer neighbour first)."""
        first_seen = {}
        for rank, digit in enumerate(self.labels):
            first_seen.setdefault(int(digit), rank)
        return sorted(first_seen, key=lambda d: (-self.votes[d], first_seen[d]))

    @property
    def digit(self) -> int | None:
        """The recognised digit, or None when the vote is split or the latent is far from them all."""
        top = self.ranked
        lead = self.votes[top[0]]
        tied = len(top) > 1 and self.votes[top[1]] == lead
        return None if self.far or lead < sure_from(len(self.neighbours)) or tied else top[0]

    def sentence(self) -> str:
        """"Looks like a 4: 7 of 8 nearest training digits", or why there is no verdict."""
        k, top = len(self.neighbours), self.ranked
        if self.digit is not None:
            return f"Looks like a {self.digit}: {self.votes[self.digit]} of {k} nearest training digits"
        if self.far:
            return (f"Unsure: unlike every training digit (its nearest is further away than for "
                    f"{FAR_QUANTILE:.1%} of them); the nearest are mostly {top[0]}s")
        if len(top) == 1:  # only reachable with a k too small for SURE_FROM
            return f"Unsure: {self.votes[top[0]]} of {k} nearest training digits are {top[0]}s"
        return (f"Unsure: {top[0]} or {top[1]} ({self.votes[top[0]]} and {self.votes[top[1]]} of "
                f"{k} nearest training digits)")


def sure_from(k: int) -> int:
    """Votes needed for a verdict among k voters: SURE_FROM of VOTERS, in proportion."""
    return max(1, round(k * SURE_FROM / VOTERS))


class DigitVote:
    """The k-NN vote among reference latents (the training digits' means) and their labels."""

    def __init__(self, means: np.ndarray, labels, k: int = VOTERS, far_quantile: float = FAR_QUANTILE,
                 seed: int = 0):
        from sklearn.neighbors import NearestNeighbors

        self.means = np.ascontiguousarray(means, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.k = min(k, len(self.means))
        self.index = NearestNeighbors(n_neighbors=self.k, algorithm="brute").fit(self.means)
        # How far a training digit's nearest other training digit is, on a fixed sample of them.
        sample = np.random.default_rng(seed).choice(len(self.means), min(2000, len(self.means)), replace=False)
        nearest_other = self.index.kneighbors(self.means[sample], n_neighbors=min(2, len(self.means)))[0][:, -1]
        self.far_distance = float(np.quantile(nearest_other, far_quantile))

    def vote(self, mu: np.ndarray) -> Verdict:
        """The verdict on one latent [d]."""
        distances, neighbours = self.index.kneighbors(np.asarray(mu, dtype=np.float32).reshape(1, -1))
        labels = self.labels[neighbours[0]]
        return Verdict(np.bincount(labels, minlength=10), labels, neighbours[0], distances[0],
                       far=bool(distances[0, 0] > self.far_distance))

    def recognise(self, mu: np.ndarray, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """For many latents [N, d]: the leading digit [N] and its share of the votes [N] (ties go to
        the nearer neighbour's digit)."""
        digits, shares = [], []
        for start in range(0, len(mu), batch_size):
            _, neighbours = self.index.kneighbors(np.asarray(mu[start : start + batch_size], dtype=np.float32))
            labels = self.labels[neighbours]
            rows = np.arange(len(labels))[:, None]
            counts = np.zeros((len(labels), 10), dtype=np.int64)
            np.add.at(counts, (rows, labels), 1)
            lead = counts.max(axis=1)
            # The nearest neighbour whose digit has the most votes names the winner, so ties go nearer.
            winner = (counts[rows, labels] == lead[:, None]).argmax(axis=1)
            digits.append(labels[rows[:, 0], winner])
            shares.append(lead / self.k)
        return np.concatenate(digits), np.concatenate(shares)
