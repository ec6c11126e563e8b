"""Exploring a trained VAE's latent space: encode, project to 2-D and back, neighbours,
interpolation, traversal, prior samples and how typical one image's -ELBO is.

Everything works on numpy arrays (latents [N, d] float32; images float in [0, 1] in the form a
dataset holds them, [N, H, W] grayscale or [N, 3, H, W] colour, ``as_images``) so pages can cache
results and hand them straight to ``vae.images.make_grid``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import to_float
from .files import write_atomically
from .metrics import model_device, negative_elbo_parts
from .model import ConvVAE

PROJECTIONS = ("raw", "pca", "tsne")
MIX_NEIGHBOURS = 8  # t-SNE has no inverse: a location decodes as a mix of this many neighbours
FFT_FROM = 2500  # t-SNE points from which FFT repulsion beats Barnes-Hut (bench/projections.py --crossover)

Progress = Callable[[int, int], None]
_LOGGER = logging.getLogger(__name__)


@torch.no_grad()
def encode(
    model: ConvVAE, images, batch_size: int = 1000, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means and log-variances [N, d] of images [N, H, W] or [N, C, H, W] (or one
    grayscale [H, W]; an autoencoder's codes and None), in batches; ``progress(done, total)``
    after each batch."""
    device = model_device(model)
    n = len(images) if np.ndim(images) > 2 else 1
    mus, logvars = [], []
    for start in range(0, n, batch_size):
        chunk = images[start : start + batch_size] if np.ndim(images) > 2 else images
        mu, logvar = model.encode(to_float(chunk, device))
        mus.append(mu.float().cpu().numpy())
        if logvar is not None:
            logvars.append(logvar.float().cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, n), n)
    return np.concatenate(mus), np.concatenate(logvars) if logvars else None


def as_images(decoded: torch.Tensor) -> np.ndarray:
    """A decoder's output [N, C, H, W] as float32 numpy images in a dataset's form: [N, H, W] for
    grayscale, [N, 3, H, W] for colour."""
    images = decoded.float().cpu().numpy()
    return images[:, 0] if images.shape[1] == 1 else images


@torch.no_grad()
def decode(model: ConvVAE, latents: np.ndarray) -> np.ndarray:
    """Pixel probabilities for latents [N, d] (or one [d]): [N, H, W], or [N, 3, H, W] from a
    colour model (``as_images``)."""
    z = torch.as_tensor(np.atleast_2d(latents), dtype=torch.float32, device=model_device(model))
    return as_images(model.decode(z))


def posterior_samples(mu: np.ndarray, logvar: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n latents [n, d] drawn from q(z|x) = N(mu, exp(logvar)) for one image's mu, logvar [d]."""
    eps = np.random.default_rng(seed).standard_normal((n, mu.shape[-1])).astype(np.float32)
    return mu + eps * np.exp(0.5 * logvar)


def prior_samples(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """n latents [n, d] from the prior N(0, I), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, latent_dim, generator=generator).numpy()


def test_subset(n: int, total: int = 10_000, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed random subset of a test set of ``total`` images (MNIST's 10,000
    unless given); a smaller subset is always contained in a larger one, so growing the map keeps
    the points already shown."""
    order = np.random.default_rng(seed).permutation(total)
    return np.sort(order[: min(n, total)])


def label_centres(coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The labels present among ``labels`` and the median position of each one's points [k, 2]:
    where a map writes a label's name, and what a sentence says of where it lies."""
    present = np.unique(labels)
    return present, np.array([np.median(coords[labels == k], axis=0) for k in present]).reshape(len(present), -1)


# ---------------------------------------------------------------- neighbours


def nearest(points: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances [k] of the k rows of ``points`` closest to ``query``,
    nearest first (brute force: 10,000 x 32 takes about a millisecond)."""
    d = np.sqrt(((points - query) ** 2).sum(axis=1))
    k = min(k, len(points))
    idx = np.argpartition(d, k - 1)[:k]
    idx = idx[np.argsort(d[idx])]
    return idx, d[idx]


def label_agreement(points: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each point's k nearest neighbours (itself left out) that share its label:
    how well a space or a 2-D map keeps the labels apart (chance is about 0.1 on MNIST)."""
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return float((labels[idx[:, 1:]] == labels[:, None]).mean())


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5) -> float:
    """The share of points whose label the vote of their k nearest neighbours gives, each point
    voted on by the others in a ``folds``-fold cross-validation (stratified, seeded): the same
    measure for a latent space and for any 2-D map of it. A small set gets fewer folds (no more than
    its largest label has points) and voters (no more than a fold's training points); NaN where
    even two folds cannot be made."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = min(folds, int(np.unique(labels, return_counts=True)[1].max()))
    if folds < 2:
        return float("nan")
    k = min(k, len(points) - -(-len(points) // folds))
    folds_of = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(k), points, labels, cv=folds_of).mean())


def inverse_distance_mix(values: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Weighted mean of ``values`` [k, ...] with weights 1/distance; an exact hit (distance 0)
    returns that value."""
    if distances[0] <= 1e-9:
        return values[0]
    w = 1.0 / distances
    return (w[:, None] * values).sum(axis=0) / w.sum()


# ---------------------------------------------------------------- projections


@dataclass
class Projection:
    """A 2-D map of latents [N, d] and the ways between map and latent space.

    raw: the latent itself (2-D latents only); pca: a linear plane with an exact inverse;
    tsne: a nonlinear embedding with no inverse, so ``to_latent`` mixes the latents of the
    nearest map points and ``to_map`` places a new latent among its nearest latent neighbours."""

    method: str
    coords: np.ndarray  # [N, 2] map positions of ``latents``
    latents: np.ndarray  # [N, d]
    pca: object | None = None  # fitted sklearn PCA for method "pca"

    @property
    def exact_inverse(self) -> bool:
        return self.method != "tsne"

    def to_latent(self, xy) -> np.ndarray:
        """The latent [d] at map position xy."""
        xy = np.asarray(xy, dtype=np.float32).reshape(1, 2)
        if self.method == "raw":
            return xy[0]
        if self.method == "pca":
            return self.pca.inverse_transform(xy)[0].astype(np.float32)
        idx, dist = nearest(self.coords, xy[0], MIX_NEIGHBOURS)
        return inverse_distance_mix(self.latents[idx], dist).astype(np.float32)

    def to_latents(self, xy: np.ndarray) -> np.ndarray:
        """Latents [M, d] for map positions [M, 2]."""
        xy = np.asarray(xy, dtype=np.float32)
        if self.method == "raw":
            return xy
        if self.method == "pca":
            return self.pca.inverse_transform(xy).astype(np.float32)
        return np.stack([self.to_latent(p) for p in xy])

    def to_map(self, z: np.ndarray) -> np.ndarray:
        """The map position [2] of a latent [d] (for t-SNE: its neighbours' weighted mean)."""
        z = np.asarray(z, dtype=np.float32)
        if self.method == "raw":
            return z.reshape(2)
        if self.method == "pca":
            return self.pca.transform(z.reshape(1, -1))[0]
        idx, dist = nearest(self.latents, z, MIX_NEIGHBOURS)
        return inverse_distance_mix(self.coords[idx], dist)

    def to_map_covariance(self, logvar: np.ndarray) -> np.ndarray | None:
        """The map-plane covariance [2, 2] of a diagonal Gaussian posterior with log-variances
        ``logvar`` [d]: itself for a raw 2-D latent, W diag(var) W^T under PCA (W: its two
        directions); None for t-SNE, which has no linear map to carry a covariance."""
        variance = np.exp(np.asarray(logvar, dtype=np.float64).reshape(-1))
        if self.method == "raw":
            return np.diag(variance)
        if self.method == "pca":
            w = self.pca.components_.astype(np.float64)
            return (w * variance) @ w.T
        return None

    def extent(self, pad: float = 0.05, include=()) -> tuple[tuple[float, float], tuple[float, float]]:
        """(x_min, x_max), (y_min, y_max) of the points and of the map positions in ``include``,
        widened by ``pad`` of the span."""
        coords = np.vstack([self.coords, np.asarray(include, dtype=self.coords.dtype).reshape(-1, 2)])
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        margin = (hi - lo) * pad
        lo, hi = lo - margin, hi + margin
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def project(
    latents: np.ndarray, method: str, *, perplexity: float = 30.0, seed: int = 0, cache_dir: str | Path | None = None
) -> Projection:
    """Fit a 2-D projection of latents [N, d]. t-SNE takes seconds (10,000 points: about 13 s on
    one core); with ``cache_dir`` its map is kept on disk (``cached_tsne``)."""
    latents = np.asarray(latents, dtype=np.float32)
    if method == "raw":
        if latents.shape[1] != 2:
            raise ValueError(f"raw coordinates need a 2-D latent, this one has {latents.shape[1]} dimensions")
        return Projection("raw", latents.copy(), latents)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        return Projection("pca", pca.fit_transform(latents).astype(np.float32), latents, pca)
    if method == "tsne":
        return Projection("tsne", cached_tsne(latents, perplexity, seed, cache_dir), latents)
    raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")


def tsne(
    latents: np.ndarray, perplexity: float = 30.0, seed: int = 0, *, gradient: str = "auto", threads: int = 1
) -> np.ndarray:
    """t-SNE map [N, 2] of latents [N, d] by openTSNE, several times faster than scikit-learn's at the
    same k-NN label agreement and trustworthiness (bench/projections.py). Exact neighbours (brute
    force: about a second for 10,000 points). The repulsion ``gradient``: "bh" (Barnes-Hut) or
    "fft" (interpolated on a grid of 2 map units per interval, half openTSNE's resolution and
    about half its time); "auto" takes the faster for N, FFT from ``FFT_FROM`` points. One thread by
    default: two made it 1.4-4x *slower* whenever the other core was busy (a training run)."""
    from openTSNE import TSNE

    if gradient == "auto":
        gradient = "fft" if len(latents) >= FFT_FROM else "bh"
    perplexity = min(perplexity, (len(latents) - 1) / 3)
    embedding = TSNE(
        perplexity=perplexity, neighbors="exact", knn_kwargs={"algorithm": "brute"},
        negative_gradient_method=gradient, ints_in_interval=2, n_jobs=threads, random_state=seed,
    ).fit(np.asarray(latents, dtype=np.float32))
    return np.array(embedding, dtype=np.float32)  # a plain copy: the embedding object holds its affinities


def cached_tsne(latents: np.ndarray, perplexity: float = 30.0, seed: int = 0,
                cache_dir: str | Path | None = None) -> np.ndarray:
    """``tsne``, its map kept in ``cache_dir`` as a .npy file named by a hash of the latents' bytes,
    the settings and the openTSNE version: a restarted server shows a map it has made before in
    milliseconds instead of seconds. A missing, unreadable or malformed file is recomputed; a
    failed write only logs a warning."""
    latents = np.ascontiguousarray(latents, dtype=np.float32)
    if cache_dir is None:
        return tsne(latents, perplexity, seed)
    settings = (latents.shape, float(perplexity), seed, FFT_FROM, importlib.metadata.version("openTSNE"))
    digest = hashlib.sha256(latents.tobytes() + repr(settings).encode()).hexdigest()[:32]
    path = Path(cache_dir) / f"tsne-{digest}.npy"
    try:
        coords = np.load(path, allow_pickle=False)
        if coords.shape == (len(latents), 2) and coords.dtype == np.float32 and np.isfinite(coords).all():
            return coords
    except (OSError, ValueError):  # not there yet, or damaged
        pass
    coords = tsne(latents, perplexity, seed)
    try:
        write_atomically(path, lambda f: np.save(f, coords))
    except OSError as e:
        _LOGGER.warning("Could not keep the t-SNE map in %s: %s", cache_dir, e)
    return coords


def ellipse(centre, covariance: np.ndarray, sigmas: float, points: int = 73) -> np.ndarray:
    """The outline [points, 2] (closed: last point = first) of a 2-D Gaussian's ``sigmas``-sigma
    contour, from its covariance's eigenvectors (axes) and eigenvalues (squared half-lengths)."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    angle = np.linspace(0.0, 2.0 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)])  # [2, points]
    return (np.asarray(centre, dtype=np.float64)[:, None]
            + sigmas * vectors @ (np.sqrt(np.clip(values, 0.0, None))[:, None] * circle)).T


def grid_points(x_range: tuple[float, float], y_range: tuple[float, float], n: int) -> np.ndarray:
    """n x n map positions [n*n, 2], row by row from the top (largest y) and left to right,
    so decoding them and tiling row by row gives a picture oriented like the plot."""
    xs = np.linspace(*x_range, n, dtype=np.float32)
    ys = np.linspace(*y_range, n, dtype=np.float32)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


# ---------------------------------------------------------------- paths through latent space


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """``steps`` latents [steps, d] from z0 to z1 (both included). "slerp" follows the great
    circle between their directions, blending norms linearly, so the path stays at the norm
    typical of the prior instead of cutting through its low-density centre."""
    z0, z1 = np.asarray(z0, dtype=np.float32), np.asarray(z1, dtype=np.float32)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < 1e-8 or n1 < 1e-8:
        return (1 - t) * z0 + t * z1
    u0, u1 = z0 / n0, z1 / n1
    omega = np.arccos(np.clip(u0 @ u1, -1.0, 1.0))
    if omega < 1e-4:  # (almost) the same direction: nothing to bend
        return (1 - t) * z0 + t * z1
    direction = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def traversal(z: np.ndarray, dims, span: float = 3.0, steps: int = 9) -> np.ndarray:
    """Latents [len(dims), steps, d]: z with one dimension at a time moved over
    z[dim] + linspace(-span, span) (in units of the prior's standard deviation, 1)."""
    z = np.asarray(z, dtype=np.float32)
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    out = np.repeat(z[None, None], len(dims), axis=0).repeat(steps, axis=1)
    for row, dim in enumerate(dims):
        out[row, :, dim] += offsets
    return out


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_j|x) || N(0,1)) per latent dimension [d] over a set of images: dimensions
    near 0 are unused by the model ("inactive"), the largest carry the most information."""
    return 0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar).mean(axis=0)


# ---------------------------------------------------------------- how typical is an image


def negative_elbo(
    model: ConvVAE, images, batch_size: int = 1000, seed: int = 0, progress: Progress | None = None
) -> np.ndarray:
    """Per-image -ELBO [N] in nats, the estimator ``vae.metrics.evaluate`` averages, so one
    image compares with the test set (an autoencoder's: its reconstruction BCE)."""
    bce, kl = negative_elbo_parts(model, to_float(images, "cpu"), batch_size, seed, progress)
    return (bce + kl).numpy()


def percentile_of(value: float, reference: np.ndarray) -> float:
    """Percentage of ``reference`` values below ``value`` (0 = lowest -ELBO, most typical)."""
    return float(100.0 * np.mean(np.asarray(reference) < value))
