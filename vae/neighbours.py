"""Which label a latent looks like: a k-nearest-neighbour vote among the training images'
posterior means (MNIST's 60,000 digits, or any labelled dataset's), which are computed once per
model and kept on disk.

The vote needs no classifier of its own: a VAE trained without labels still places images of
one kind near each other, so the labels of a drawing's nearest training images say what the
model takes it for, and how split they are says how sure it is. An unlabelled set has nothing
to vote with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import latent
from .checkpoint import Checkpoint
from .data import default_data_dir
from .files import kept_arrays

VOTERS = 8  # nearest training images that vote on a drawing
SURE_FROM = 5  # votes the leading label needs (of VOTERS) for a verdict rather than "unsure"
FAR_QUANTILE = 0.995  # a latent further from every training image than this share of them is "far"


# ---------------------------------------------------------------- the training images' means


def default_cache_dir() -> Path:
    """Where the app and ``python -m vae.generate`` keep the training images' means, of every
    dataset: each file is named by its images' hash (``cached_means``), so two datasets never
    share one."""
    return default_data_dir() / "means"


def images_digest(images) -> str:
    """A short hash of an image set's bytes and shape, so a cache names the images it encodes."""
    a = np.ascontiguousarray(images.numpy() if isinstance(images, torch.Tensor) else images)
    return hashlib.sha256(a.tobytes() + repr((a.shape, str(a.dtype))).encode()).hexdigest()[:16]


def cached_means(ckpt: Checkpoint, images, cache_dir: str | Path | None, progress=None) -> np.ndarray:
    """Posterior means [N, d] of ``images`` under the checkpoint's model, kept in ``cache_dir`` as a
    .npz named by the model file's hash and the images' own (``images_digest``: so each dataset's
    images have their own file), which it names inside too (``vae.files.kept_arrays``): a damaged,
    foreign or missing one is encoded again (``progress(done, total)`` per batch)."""
    key = f"{ckpt.key}-{images_digest(images)}"
    path = Path(cache_dir) / f"means-{key}.npz" if cache_dir is not None else None
    return kept_arrays(path, key, {"mu": (len(images), ckpt.model.latent_dim)},
                       lambda: {"mu": latent.encode(ckpt.model, images, progress=progress)[0]})["mu"]


# ---------------------------------------------------------------- the vote


@dataclass(frozen=True)
class LabelWords:
    """How sentences name a dataset's labels: digits (every name a single figure, as MNIST's) as
    "a 4" and "4s" among "digits"; other names as "a cat", "an owl" and "cat images" among "images"."""

    names: tuple[str, ...]

    @property
    def digits(self) -> bool:
        """Whether the labels are digits; an unlabelled set's images are not."""
        return bool(self.names) and all(len(name) == 1 and name.isdigit() for name in self.names)

    @property
    def noun(self) -> str:
        """One training image: "digit" or "image"."""
        return "digit" if self.digits else "image"

    def one(self, label: int) -> str:
        """A single image of ``label``: "a 4", "a cat", "an owl"."""
        name = self.names[label]
        article = "an" if not self.digits and name[:1].lower() in tuple("aeiou") else "a"
        return f"{article} {name}"

    def many(self, label: int) -> str:
        """Several images of ``label``: "4s", "cat images"."""
        name = self.names[label]
        return f"{name}s" if self.digits else f"{name} images"


def label_names_of(labels: np.ndarray, label_names: Sequence[str] | None) -> tuple[str, ...]:
    """``label_names`` as a tuple, checked to name every one of ``labels``; None: the labels' own
    numbers, "0" to the highest (MNIST's digits are so named). A ValueError for an unlabelled set
    (no names) or a label without a name."""
    names = tuple(str(label) for label in range(int(labels.max()) + 1)) if label_names is None else tuple(label_names)
    if not names:
        raise ValueError("an unlabelled dataset has no labels to vote on or to sample by")
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(f"labels must be indices into the {len(names)} label names, "
                         f"got {labels.min()} to {labels.max()}")
    return names


@dataclass(frozen=True)
class Verdict:
    """The vote on one latent: how many of its ``len(neighbours)`` nearest training images are of
    each label, and whether that makes a verdict."""

    votes: np.ndarray  # [labels] neighbours of each label
    labels: np.ndarray  # [k] the neighbours' labels, nearest first
    neighbours: np.ndarray  # [k] training indices, nearest first
    distances: np.ndarray  # [k] Euclidean distances in latent space
    far: bool  # further from every training image than almost all training images are from theirs
    label_names: tuple[str, ...]  # the dataset's, one per label

    @property
    def ranked(self) -> list[int]:
        """Labels with at least one vote, most votes first (ties: the nearer neighbour first)."""
        first_seen = {}
        for rank, label in enumerate(self.labels):
            first_seen.setdefault(int(label), rank)
        return sorted(first_seen, key=lambda label: (-self.votes[label], first_seen[label]))

    @property
    def digit(self) -> int | None:
        """The recognised label, or None when the vote is split or the latent is far from them all."""
        top = self.ranked
        lead = self.votes[top[0]]
        tied = len(top) > 1 and self.votes[top[1]] == lead
        return None if self.far or lead < sure_from(len(self.neighbours)) or tied else top[0]

    @property
    def name(self) -> str | None:
        """The recognised label's name, or None as ``digit``."""
        return None if self.digit is None else self.label_names[self.digit]

    def sentence(self) -> str:
        """"Looks like a 4: 7 of 8 nearest training digits" ("Looks like a cat: 7 of 8 nearest
        training images" for named labels), or why there is no verdict."""
        k, top, words = len(self.neighbours), self.ranked, LabelWords(self.label_names)
        nearest = f"{k} nearest training {words.noun}s"
        if self.digit is not None:
            return f"Looks like {words.one(self.digit)}: {self.votes[self.digit]} of {nearest}"
        if self.far:
            return (f"Unsure: unlike every training {words.noun} (its nearest is further away than for "
                    f"{FAR_QUANTILE:.1%} of them); the nearest are mostly {words.many(top[0])}")
        if len(top) == 1:  # only reachable with a k too small for SURE_FROM
            return f"Unsure: {self.votes[top[0]]} of {nearest} are {words.many(top[0])}"
        first, second = (self.label_names[label] for label in top[:2])
        return f"Unsure: {first} or {second} ({self.votes[top[0]]} and {self.votes[top[1]]} of {nearest})"


def sure_from(k: int) -> int:
    """Votes needed for a verdict among k voters: SURE_FROM of VOTERS, in proportion."""
    return max(1, round(k * SURE_FROM / VOTERS))


class DigitVote:
    """The k-NN vote among reference latents (the training images' means) and their labels, named
    by ``label_names`` (the dataset's; None: the labels' own numbers, as MNIST's digits). An
    unlabelled set is refused with a ValueError: it has nothing to vote with."""

    def __init__(self, means: np.ndarray, labels, label_names: Sequence[str] | None = None, k: int = VOTERS,
                 far_quantile: float = FAR_QUANTILE, seed: int = 0):
        from sklearn.neighbors import NearestNeighbors

        self.means = np.ascontiguousarray(means, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.label_names = label_names_of(self.labels, label_names)
        self.k = min(k, len(self.means))
        self.index = NearestNeighbors(n_neighbors=self.k, algorithm="brute").fit(self.means)
        # How far a training image's nearest other training image is, on a fixed sample of them.
        sample = np.random.default_rng(seed).choice(len(self.means), min(2000, len(self.means)), replace=False)
        nearest_other = self.index.kneighbors(self.means[sample], n_neighbors=min(2, len(self.means)))[0][:, -1]
        self.far_distance = float(np.quantile(nearest_other, far_quantile))

    def vote(self, mu: np.ndarray) -> Verdict:
        """The verdict on one latent [d]."""
        distances, neighbours = self.index.kneighbors(np.asarray(mu, dtype=np.float32).reshape(1, -1))
        labels = self.labels[neighbours[0]]
        return Verdict(np.bincount(labels, minlength=len(self.label_names)), labels, neighbours[0], distances[0],
                       far=bool(distances[0, 0] > self.far_distance), label_names=self.label_names)

    def recognise(self, mu: np.ndarray, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """For many latents [N, d]: the leading label [N] and its share of the votes [N] (ties go to
        the nearer neighbour's label)."""
        leaders, shares = [], []
        for start in range(0, len(mu), batch_size):
            _, neighbours = self.index.kneighbors(np.asarray(mu[start : start + batch_size], dtype=np.float32))
            labels = self.labels[neighbours]
            rows = np.arange(len(labels))[:, None]
            counts = np.zeros((len(labels), len(self.label_names)), dtype=np.int64)
            np.add.at(counts, (rows, labels), 1)
            lead = counts.max(axis=1)
            # The nearest neighbour whose label has the most votes names the winner, so ties go nearer.
            winner = (counts[rows, labels] == lead[:, None]).argmax(axis=1)
            leaders.append(labels[rows[:, 0], winner])
            shares.append(lead / self.k)
        return np.concatenate(leaders), np.concatenate(shares)
