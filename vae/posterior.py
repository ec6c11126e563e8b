"""Why "variational": the true posterior p(z|x) = p(x|z) p(z) / p(x) that the encoder's Gaussian
q(z|x) approximates, and how far apart the two are for one image.

    log p(x) = ELBO + KL(q(z|x) || p(z|x))

Training raises the ELBO, so it both explains x better (a higher log p(x)) and brings q(z|x)
closer to the true posterior (a smaller gap). Here both sides are measured:

- ``posterior_grid``: p(z|x) on a plane, exactly up to the grid, for a model with a 2-D latent;
  for a larger latent, on the 2-D slice through the two dimensions with the most KL for this
  image (the others held at μ). The grid is fine where the posterior has its mass (found by a
  coarse pass over the prior, then each mode climbed and measured), so a narrow posterior in a
  wide latent is resolved; log p(x) is its quadrature, the ELBO the expectation under q, and the
  gap KL(q || p(z|x)) summed on the same grid.
- ``log_px`` and ``iw_bounds``: the importance-weighted bounds on log p(x) (Burda et al., 2016)
  for any model; K = 1 is the ELBO, and they rise towards log p(x) as K grows.
- ``sigma_scan``: the ELBO when q's σ is scaled by a factor, with the same ε throughout; where it
  peaks away from 1, the encoder did not give this image its best q (the amortisation gap).
- ``probe``: log p(x|z), log p(z) and log q(z|x) at a chosen z, and the image decoded from it.

    python -m vae.posterior CHECKPOINT IMAGE.png   # log p(x) at each K, the ELBO and the gap
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint
from .device import model_device
from .explain import model_input
from .latent import as_images
from .loss import LOG_2PI, bernoulli_nll, importance_log_weights, importance_weighted_bound, kl_per_dim
from .model import ConvVAE, eval_mode
from .preprocess import EmptyDrawingError, ImageDecodeError, open_image, to_model_form

IW_SAMPLES = (1, 10, 100, 1000)  # each divides the next: see iw_bounds
DECODE_BATCH = 1024  # latents decoded at once: one decode costs ~35 µs in batches of 1,000, ~10x that alone
COARSE_STEPS = 48  # per axis of the pass over the prior that finds the posterior's modes
MODE_RANGE = 12.0  # nats: a mode whose mass is this far below the largest one's is left out (< 1e-5 of it)
MAX_STEPS = 128  # per axis of the fine grid, at most (about 16,000 decodes)


class NotVariationalError(ValueError):
    """A plain autoencoder has no q(z|x): there is nothing to compare with the posterior."""


@dataclass(frozen=True, eq=False)
class PosteriorGrid:
    """p(z|x) on a plane of two latent dimensions, in nats. The axes are finer where the
    posterior (and q) have mass, so they are not evenly spaced; ``log_density`` is a density,
    normalised over the grid, rows along ``z2`` and columns along ``z1`` (a heat map's layout)."""

    z1: np.ndarray  # [n1] coordinates of latent dimension dims[0]
    z2: np.ndarray  # [n2] coordinates of dims[1]
    log_density: np.ndarray  # [n2, n1] log p(z|x) (on a slice: given the other dimensions at μ)
    log_px: float  # log p(x) by quadrature (on a slice: the slice's normaliser, not log p(x))
    elbo: float  # E_q[log p(x|z)] - KL(q(z|x) || p(z)), the expectation on the grid
    gap: float  # KL(q(z|x) || p(z|x)) = log_px - elbo
    q_mean: np.ndarray  # [2] μ of the two dimensions
    q_cov: np.ndarray  # [2, 2] q's covariance there (diagonal: the encoder's σ²)
    post_mean: np.ndarray  # [2] the posterior's own mean and covariance, from the grid
    post_cov: np.ndarray  # [2, 2]
    modes: np.ndarray  # [m, 2] the posterior's modes, the largest first
    mass_outside: float  # share of the posterior's mass outside the grid, as the coarse pass sees it
    dims: tuple[int, int]  # which latent dimensions the plane spans
    sliced: bool  # True for a latent of more than two dimensions: the plane is a slice through μ

    @property
    def extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (float(self.z1[0]), float(self.z1[-1])), (float(self.z2[0]), float(self.z2[-1]))


@dataclass(frozen=True, eq=False)
class SigmaScan:
    """The ELBO of one image when q's σ is multiplied by each of ``scales`` (μ kept), estimated
    with the same ε at every scale so that the curve is smooth; at scale 0 the KL is infinite."""

    scales: np.ndarray  # [s], all > 0
    elbo: np.ndarray  # [s] E_q[log p(x|z)] - KL
    expected_loglik: np.ndarray  # [s] E_q[log p(x|z)]
    kl: np.ndarray  # [s] KL(q || p(z)), analytic

    @property
    def best_scale(self) -> float:
        return float(self.scales[int(np.argmax(self.elbo))])


@dataclass(frozen=True, eq=False)
class Probe:
    """One latent z for one image: what the decoder makes of it and the three log-densities there."""

    z: np.ndarray  # [d]
    probs: np.ndarray  # [H, W], or [3, H, W] from a colour model: decoded from z
    log_likelihood: float  # log p(x|z) = -BCE
    log_prior: float  # log p(z) under N(0, I)
    log_q: float  # log q(z|x) under the encoder's Gaussian

    @property
    def log_joint(self) -> float:
        return self.log_likelihood + self.log_prior


# ---------------------------------------------------------------- the pieces


def encoding(model: ConvVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(z|x)'s μ and log σ² [d] in fp32; NotVariationalError for an autoencoder."""
    mu, logvar = model.encode(x)
    if logvar is None:
        raise NotVariationalError("a plain autoencoder has no q(z|x), so there is no posterior to approximate")
    return mu[0].float(), logvar[0].float()


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag exp(logvar)) summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(-1)


def log_likelihood(model: ConvVAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x|z) [N] for latents z [N, d], decoded in batches."""
    parts = [-bernoulli_nll(model.decode_logits(chunk), x.expand(len(chunk), -1, -1, -1))
             for chunk in z.split(DECODE_BATCH)]
    return torch.cat(parts)


def log_prior(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def plane_dims(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[int, int]:
    """The two latent dimensions of the plane: both of a 2-D latent, else the two with this
    image's largest KL, in index order."""
    if len(mu) == 2:
        return 0, 1
    kl = kl_per_dim(mu[None], logvar[None])[0]
    return tuple(sorted(int(j) for j in torch.topk(kl, 2).indices))


class _Plane:
    """log p(x, z) on the plane through μ spanned by ``dims``: log p(x|z) plus the prior of the two
    dimensions (the prior factorises, so on a slice this is p(z_dims | x, the rest at μ) unnormalised)."""

    def __init__(self, model: ConvVAE, x: torch.Tensor, mu: torch.Tensor, dims: tuple[int, int]):
        self.model, self.x, self.mu, self.dims = model, x, mu, list(dims)

    def latents(self, points: torch.Tensor) -> torch.Tensor:
        z = self.mu.expand(len(points), -1).clone()
        z[:, self.dims] = points
        return z

    def log_joint(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z), log p(z_dims)) [N] at points [N, 2]."""
        return log_likelihood(self.model, self.x, self.latents(points)), log_prior(points)


# ---------------------------------------------------------------- the posterior on a plane


@torch.no_grad()
def posterior_grid(model: ConvVAE, image, coarse_steps: int = COARSE_STEPS, max_steps: int = MAX_STEPS,
                   oversample: float = 3.0) -> PosteriorGrid:
    """p(z|x) of one image (any form ``vae.explain.model_input`` takes) on a grid over the plane
    of ``plane_dims``: a coarse pass of ``coarse_steps``² points over the prior finds where the
    posterior has mass (one mode, or more for an ambiguous image), each mode is climbed and its
    width measured, and the fine grid puts ``oversample`` points per standard deviation of the
    narrowest mode (and of q) across ±6 of them, with at most ``max_steps`` per axis."""
    device = model_device(model)
    x = model_input(model, image)
    with eval_mode(model), torch.autocast(device.type, enabled=False):
        mu, logvar = encoding(model, x)
        dims = plane_dims(mu, logvar)
        plane = _Plane(model, x, mu, dims)
        q_mean, q_logvar = mu[list(dims)], logvar[list(dims)]

        # 1. A coarse pass over the prior (and past it, where μ lies further out).
        reach = max(5.0, float(q_mean.abs().max()) + 1.5)
        axis = torch.linspace(-reach, reach, coarse_steps, device=device)
        coarse = torch.cartesian_prod(axis, axis)  # [(i, j)] = (axis[i], axis[j])
        coarse_joint = sum(plane.log_joint(coarse)).view(coarse_steps, coarse_steps)

        # 2. Modes: q's mean and the coarse grid's local maxima, climbed, then measured.
        candidates = torch.cat([q_mean[None], coarse[_local_maxima(coarse_joint)]])
        modes, covs, log_mass = _climb(plane, candidates)
        keep = log_mass >= log_mass.max() - MODE_RANGE
        modes, covs, log_mass = modes[keep], covs[keep], log_mass[keep]
        modes, covs = modes[torch.argsort(log_mass, descending=True)], covs[torch.argsort(log_mass, descending=True)]

        # 3. The fine grid: dense around each mode and around q, sparse between.
        q_sd = (0.5 * q_logvar).exp()
        spans = [(m, covs[i].diagonal().sqrt(), 6.0) for i, m in enumerate(modes)] + [(q_mean, q_sd, 5.0)]
        z1 = _axis([(float(c[0]), float(s[0]), k) for c, s, k in spans], oversample, max_steps)
        z2 = _axis([(float(c[1]), float(s[1]), k) for c, s, k in spans], oversample, max_steps)
        t1, t2 = (torch.as_tensor(a, dtype=torch.float32, device=device) for a in (z1, z2))
        points = torch.stack(torch.meshgrid(t1, t2, indexing="xy"), -1).reshape(-1, 2)  # rows along z2
        loglik, log_prior = (t.view(len(z2), len(z1)).double() for t in plane.log_joint(points))

    log_area = torch.as_tensor(np.log(_weights(z2))[:, None] + np.log(_weights(z1))[None, :], dtype=torch.float64)
    log_joint = loglik + log_prior
    log_px = torch.logsumexp(log_joint + log_area, dim=(0, 1))
    log_density = log_joint - log_px
    log_q = log_normal(points.double().view(len(z2), len(z1), 2), q_mean.double(), q_logvar.double())
    q_mass = torch.softmax((log_q + log_area).flatten(), 0).view_as(log_q)  # q on the grid, summing to 1
    elbo = float((q_mass * loglik).sum()) - float(kl_per_dim(q_mean[None], q_logvar[None]).sum())
    gap = float((q_mass * (log_q - log_density)).sum())
    post_mass = (log_density + log_area).exp()
    grid_z = points.double().view(len(z2), len(z1), 2)
    post_mean = (post_mass[..., None] * grid_z).sum((0, 1))
    centred = grid_z - post_mean
    post_cov = (post_mass[..., None, None] * centred[..., :, None] * centred[..., None, :]).sum((0, 1))
    return PosteriorGrid(
        z1=z1, z2=z2, log_density=log_density.float().cpu().numpy(), log_px=float(log_px), elbo=elbo, gap=gap,
        q_mean=q_mean.cpu().numpy(), q_cov=np.diag(q_logvar.exp().cpu().numpy()),
        post_mean=post_mean.cpu().numpy(), post_cov=post_cov.cpu().numpy(), modes=modes.cpu().numpy(),
        mass_outside=_mass_outside(coarse_joint, axis, float(log_px), (z1, z2)),
        dims=dims, sliced=len(mu) > 2,
    )


def _local_maxima(values: torch.Tensor, limit: int = 6) -> torch.Tensor:
    """Flat indices of the (at most ``limit``) largest points of a 2-D array that are at least as
    high as their eight neighbours and within reach of the highest (2 MODE_RANGE: the coarse grid
    misses a narrow peak's top)."""
    padded = torch.nn.functional.pad(values[None, None], (1, 1, 1, 1), value=-math.inf)
    peaks = (values >= torch.nn.functional.max_pool2d(padded, 3, stride=1)[0, 0]).flatten()
    peaks &= values.flatten() >= values.max() - 2 * MODE_RANGE
    order = torch.argsort(values.flatten()[peaks], descending=True)
    return torch.nonzero(peaks).flatten()[order][:limit]


def _climb(plane: _Plane, starts: torch.Tensor, iterations: int = 60):
    """Each start climbed to its mode of log p(x, z) (L-BFGS), and there its Laplace approximation:
    (modes [m, 2], covariances [m, 2, 2], log masses [m]); modes that met are kept once."""
    with torch.enable_grad():
        points = starts.clone().requires_grad_(True)
        optimiser = torch.optim.LBFGS([points], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

        def negative_joint():  # its gradient for the points alone: the model's weights keep no .grad
            value = -sum(plane.log_joint(points)).sum()
            points.grad = torch.autograd.grad(value, points)[0]
            return value

        optimiser.step(negative_joint)
        modes = points.detach()
        hessians = torch.stack([torch.autograd.functional.hessian(lambda p: sum(plane.log_joint(p[None]))[0], m)
                                for m in modes])
    precision = -hessians.double()
    # A point that is no maximum (a flat or saddle region) gets a broad, isotropic width instead.
    definite = torch.linalg.eigvalsh(precision).min(-1).values > 1e-6
    covs = torch.where(definite[:, None, None], torch.linalg.inv(torch.where(definite[:, None, None], precision,
                       torch.eye(2, dtype=torch.float64))), torch.eye(2, dtype=torch.float64) * 0.25)
    log_joint = sum(plane.log_joint(modes)).double()
    log_mass = log_joint + 0.5 * torch.logdet(2 * math.pi * covs)
    kept = []
    for i in torch.argsort(log_mass, descending=True).tolist():
        if all(_mahalanobis(modes[i] - modes[j], covs[j]) > 3.0 for j in kept):
            kept.append(i)
    return modes[kept], covs[kept].float(), log_mass[kept]


def _mahalanobis(offset: torch.Tensor, cov: torch.Tensor) -> float:
    return float(torch.sqrt(offset.double() @ torch.linalg.solve(cov.double(), offset.double())))


def _axis(spans: list[tuple[float, float, float]], oversample: float, max_steps: int) -> np.ndarray:
    """Grid coordinates along one axis: ``oversample`` points per standard deviation inside each
    span (centre, sd, half-width in sds), a few between spans; coarser all over if that would take
    more than ``max_steps`` points."""
    segments = sorted((c - k * s, c + k * s, s / oversample) for c, s, k in spans)
    lo, hi = segments[0][0], max(b for _, b, _ in segments)
    between = (hi - lo) / 24  # the step where no span is: the posterior has no mass to resolve there
    stretch = 1.0
    while True:
        points, t = [lo], lo
        while t < hi:
            inside = [h for a, b, h in segments if a <= t < b]
            step = stretch * min(inside) if inside else stretch * between
            upcoming = [a for a, _, _ in segments if a > t]
            t = min(t + step, upcoming[0] if upcoming else math.inf, hi)
            points.append(t)
        if len(points) <= max_steps:
            return np.asarray(points)
        stretch *= 1.1 * len(points) / max_steps


def _weights(axis: np.ndarray) -> np.ndarray:
    """The trapezoid rule's weights on an uneven axis: half the distance between each point's neighbours."""
    return np.diff(axis, prepend=axis[0], append=axis[-1])[:-1] / 2 + np.diff(axis, append=axis[-1]) / 2


def _mass_outside(coarse_joint: torch.Tensor, axis: torch.Tensor, log_px: float, fine: tuple) -> float:
    """The posterior's mass on the coarse grid's cells outside the fine grid's box."""
    (lo1, hi1), (lo2, hi2) = (fine[0][0], fine[0][-1]), (fine[1][0], fine[1][-1])
    a = axis.cpu().numpy()
    outside = ~(((a >= lo1) & (a <= hi1))[:, None] & ((a >= lo2) & (a <= hi2))[None, :])  # [(i: z1, j: z2)]
    cell = float(np.log((a[1] - a[0]) ** 2))
    values = coarse_joint.double().cpu().numpy()[outside] + cell - log_px
    return float(np.exp(values).sum()) if values.size else 0.0


# ---------------------------------------------------------------- log p(x) for any model


@torch.no_grad()
def log_weights(model: ConvVAE, image, n: int, seed: int = 0) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) [n] for n samples z ~ q(z|x), seeded, in batches."""
    device = model_device(model)
    x = model_input(model, image)
    generator = torch.Generator(device=device).manual_seed(seed)
    with eval_mode(model), torch.autocast(device.type, enabled=False):
        encoding(model, x)  # an autoencoder is refused in words before any sampling
        chunks = [importance_log_weights(model, x, min(DECODE_BATCH, n - done), generator)[0][:, 0]
                  for done in range(0, n, DECODE_BATCH)]
    return torch.cat(chunks).double()


def log_px(model: ConvVAE, image, k: int, seed: int = 0) -> float:
    """The importance-weighted bound on log p(x) with ``k`` samples: log (1/k) Σ p(x, z_k) / q(z_k|x).
    A lower bound that tightens as k grows; at k = 1, a one-sample ELBO."""
    return float(importance_weighted_bound(log_weights(model, image, k, seed)[:, None])[0])


def iw_bounds(model: ConvVAE, image, ks: tuple[int, ...] = IW_SAMPLES, seed: int = 0) -> dict[int, float]:
    """{k: the importance-weighted bound with k samples} from one set of max(ks) samples, each k's
    bound averaged over the max(ks)/k disjoint groups of k: an estimate of its expectation (k = 1:
    the ELBO's). Groups nest, so by Jensen's inequality the estimates rise with k, as the bounds do."""
    n = max(ks)
    if any(n % k for k in ks):
        raise ValueError(f"each sample count must divide the largest, {n}; got {list(ks)}")
    weights = log_weights(model, image, n, seed)
    return {k: float(importance_weighted_bound(weights.view(n // k, k).T).mean()) for k in ks}


# ---------------------------------------------------------------- the handles: σ scaled, z moved


@torch.no_grad()
def sigma_scan(model: ConvVAE, image, scales=None, samples: int = 32, seed: int = 0) -> SigmaScan:
    """The ELBO with q's σ times each scale (default 0.05 to 2 by 0.05), from ``samples`` ε shared by
    every scale (half of them the other half's negatives, which steadies the estimate)."""
    scales = np.round(np.arange(0.05, 2.0001, 0.05), 2) if scales is None else np.asarray(scales, dtype=np.float64)
    if (scales <= 0).any():
        raise ValueError("scales must be > 0: at 0, q is a point and its KL to the prior is infinite")
    device = model_device(model)
    x = model_input(model, image)
    with eval_mode(model), torch.autocast(device.type, enabled=False):
        mu, logvar = encoding(model, x)
        generator = torch.Generator(device=device).manual_seed(seed)
        half = torch.randn((samples + 1) // 2, len(mu), generator=generator, device=device)
        eps = torch.cat([half, -half])[:samples]
        s = torch.as_tensor(scales, dtype=torch.float32, device=device)
        z = mu + s[:, None, None] * eps[None] * (0.5 * logvar).exp()  # [scales, samples, d]
        loglik = log_likelihood(model, x, z.reshape(-1, len(mu))).view(len(scales), samples).mean(1).double()
    log_s2 = torch.as_tensor(2 * np.log(scales), dtype=torch.float32, device=mu.device)
    kl = kl_per_dim(mu.expand(len(scales), -1), logvar + log_s2[:, None]).sum(1).double().cpu()
    return SigmaScan(scales=scales, elbo=(loglik - kl).numpy(), expected_loglik=loglik.numpy(), kl=kl.numpy())


@torch.no_grad()
def probe(model: ConvVAE, image, z) -> Probe:
    """One latent ``z`` [d] for one image: its decoding and log p(x|z), log p(z), log q(z|x)."""
    device = model_device(model)
    x = model_input(model, image)
    with eval_mode(model), torch.autocast(device.type, enabled=False):
        mu, logvar = encoding(model, x)
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device).reshape(1, -1)
        if zt.shape[1] != len(mu):
            raise ValueError(f"z must have the model's {len(mu)} latent dimensions, got {zt.shape[1]}")
        logits = model.decode_logits(zt)
    return Probe(
        z=zt[0].cpu().numpy(), probs=as_images(torch.sigmoid(logits))[0],
        log_likelihood=float(-bernoulli_nll(logits, x)[0]),
        log_prior=float(log_prior(zt[0])), log_q=float(log_normal(zt[0], mu, logvar)),
    )


# ---------------------------------------------------------------- command line


def describe(ckpt, image) -> str:
    """log p(x) at each K, the ELBO and the gap, as text; for a 2-D latent also the exact values."""
    bounds = iw_bounds(ckpt.model, image)
    lines = [f"{'K':>6}  {'log p(x) bound':>15}"] + [f"{k:6d}  {v:15.2f}" for k, v in bounds.items()]
    lines.append(f"ELBO (K = 1) {bounds[1]:.2f}; gap KL(q || p(z|x)) >= {bounds[max(bounds)] - bounds[1]:.2f} nats "
                 f"(K = {max(bounds)})")
    if ckpt.config.latent_dim == 2:
        grid = posterior_grid(ckpt.model, image)
        lines.append(f"on a {len(grid.z1)}x{len(grid.z2)} grid of the 2-D latent: log p(x) {grid.log_px:.2f}, "
                     f"ELBO {grid.elbo:.2f}, gap KL(q || p(z|x)) {grid.gap:.3f} nats, {len(grid.modes)} mode(s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vae.posterior",
        description="How far q(z|x) is from the true posterior for one image: log p(x) by importance sampling "
                    f"with K = {', '.join(map(str, IW_SAMPLES))}, the ELBO and the gap (exact on a 2-D latent).",
    )
    p.add_argument("checkpoint", help="path to a .pt file written by python -m vae.train")
    p.add_argument("image", help="a PNG or JPEG of one image, prepared for the model's dataset as the Draw page "
                                 "prepares an upload")
    args = p.parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        with open(args.image, "rb") as f:
            image = to_model_form(open_image(f.read()), ckpt.dataset)
        text = describe(ckpt, image)
    except (CheckpointError, ImageDecodeError, EmptyDrawingError, NotVariationalError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.image} through {args.checkpoint}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
