"""Each chart in a sentence: what a learner would read off it, from the numbers the chart was drawn
from. Shown under the chart (``studio.access.chart``), it is the chart's text alternative for a
screen reader, and a second way in for anyone."""

from __future__ import annotations

import numpy as np

from vae.film import epoch_label
from vae.film_state import Film
from vae.history import History
from vae.latent import label_centres
from vae.posterior import PosteriorGrid, SigmaScan

SHOWN = 3  # the largest few a sentence names


def _nats(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def loss_history(history: History) -> str:
    """The loss curves: the last epoch's −ELBO on each set and the best test epoch."""
    if not history.epochs:
        return "No epoch has ended yet: the curves start after the first."
    last = history.epochs[-1]
    best = min(history.epochs, key=lambda r: r.test.loss)
    validation = "" if last.val is None else f", validation {_nats(last.val.loss)}"
    return (f"After epoch {last.epoch}: −ELBO on the training digits {_nats(last.train.loss)}{validation}, test "
            f"{_nats(last.test.loss)} nats (test BCE {last.test.bce:.1f} + KL {last.test.kl:.1f}); the lowest test "
            f"−ELBO was {_nats(best.test.loss)}, at epoch {best.epoch}.")


def compared_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> str:
    """Compare's test −ELBO curves: where each model ended, after how many epochs and how long."""
    ends = [f"{name} {losses[-1]:.1f} after {int(epochs[-1])} epochs ({seconds[-1] / 60:.1f} min)"
            for name, (epochs, seconds, losses) in curves.items() if len(losses)]
    return "Test −ELBO at each model's last epoch: " + "; ".join(ends) + "."


def dimensions(mu: np.ndarray, sigma: np.ndarray | None, shown: np.ndarray, used: np.ndarray) -> str:
    """Inside's μ ± σ per dimension against the prior (an autoencoder has no σ)."""
    first = [f"z{j} μ {mu[j]:.2f}" + ("" if sigma is None else f", σ {sigma[j]:.2f}") for j in shown[:SHOWN]]
    collapsed = int((~used).sum())
    return (f"First on the chart: {'; '.join(first)}. {collapsed} of {len(mu)} dimensions are collapsed "
            "(μ ≈ 0, σ ≈ 1, the prior itself)." if collapsed else
            f"First on the chart: {'; '.join(first)}. All {len(mu)} dimensions are in use.")


def reparameterisation(mu: np.ndarray, sigma: np.ndarray, eps: np.ndarray, z: np.ndarray, shown: np.ndarray) -> str:
    """Inside's z = μ + σ·ε per dimension."""
    sums = [f"z{j} = {mu[j]:.2f} + {sigma[j]:.2f} × ({eps[j]:.2f}) = {z[j]:.2f}" for j in shown[:SHOWN]]
    return "In the first dimensions shown: " + "; ".join(sums) + "."


def pixel_costs(bce_per_pixel: np.ndarray) -> str:
    """Inside's map of where the BCE is paid."""
    costs = bce_per_pixel if bce_per_pixel.ndim == 2 else bce_per_pixel.sum(0)  # colour: a pixel's three channels
    row, column = np.unravel_index(np.argmax(costs), costs.shape)
    ranked = np.sort(costs.ravel())[::-1]
    half = int(np.searchsorted(np.cumsum(ranked), ranked.sum() / 2)) + 1
    return (f"The BCE is {ranked.sum():.1f} nats in all; the costliest pixel (row {row}, column {column}) costs "
            f"{ranked[0]:.2f}, and half of the total is paid in the {half} costliest of {costs.size} pixels.")


def kl_bars(kl_per_dim: np.ndarray, used: np.ndarray, chosen: int) -> str:
    """Inside's KL per dimension."""
    order = np.argsort(-kl_per_dim)
    top = ", ".join(f"z{j} {kl_per_dim[j]:.2f}" for j in order[:SHOWN])
    return (f"Most KL: {top} nats; {int((~used).sum())} of {len(kl_per_dim)} dimensions are collapsed (KL ≈ 0). "
            f"Chosen: z{chosen}, {kl_per_dim[chosen]:.2f} nats.")


def bounds(bounds_by_k: dict[int, float], gap: float, exact: bool) -> str:
    """The importance-weighted bounds on log p(x)."""
    rising = ", ".join(f"K = {k:,}: {value:.2f}" for k, value in sorted(bounds_by_k.items()))
    return (f"The bounds on log p(x) rise with K ({rising}); the gap between the ELBO and log p(x) is "
            + (f"{gap:.2f} nats." if exact else f"at least {gap:.2f} nats."))


def posterior_plane(grid: PosteriorGrid, z: np.ndarray, names: tuple[str, str]) -> str:
    """The true posterior's heat map with q's ellipses, and z."""
    where = ", ".join(f"({a:.2f}, {b:.2f})" for a, b in grid.modes[:SHOWN])
    modes = "one mode" if len(grid.modes) == 1 else f"{len(grid.modes)} modes"
    return (f"On the plane of {names[0]} and {names[1]}, the true posterior has {modes}, at {where}; q(z|x) is "
            f"centred at ({grid.q_mean[0]:.2f}, {grid.q_mean[1]:.2f}) with σ {np.sqrt(grid.q_cov[0, 0]):.3f} and "
            f"{np.sqrt(grid.q_cov[1, 1]):.3f}. z is at ({z[0]:.2f}, {z[1]:.2f}).")


def latent_overview(grid: PosteriorGrid, names: tuple[str, str]) -> str:
    """The whole latent plane around the zoomed box."""
    return (f"The zoomed box sits at ({grid.q_mean[0]:.2f}, {grid.q_mean[1]:.2f}) in {names[0]} and {names[1]}, "
            "among the test digits' means and the prior's 1σ, 2σ and 3σ circles.")


def sigma_curve(scan: SigmaScan) -> str:
    """The ELBO over the scale of q's σ."""
    best = int(np.argmax(scan.elbo))
    at_one = int(np.argmin(np.abs(scan.scales - 1)))
    return (f"The ELBO peaks at {scan.elbo[best]:.2f} nats with σ scaled by {scan.scales[best]:.2f}; at the "
            f"encoder's own σ (1×) it is {scan.elbo[at_one]:.2f}, and it falls off towards 0×, where the KL grows "
            "without bound.")


def clusters(coords: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...]) -> str:
    """A map of latent means: where each label's points are centred (no names: an unlabelled set)."""
    if not label_names:
        width, height = np.ptp(coords, axis=0)
        return f"{len(coords):,} points, unlabelled, spread over {width:.1f} across by {height:.1f} up."
    centres = [f"{label_names[k]} at ({x:.1f}, {y:.1f})" for k, (x, y) in zip(*label_centres(coords, labels))]
    return f"{len(coords):,} points; each label's centre: " + "; ".join(centres) + "."


def near_point(names: list[str]) -> str:
    """What lies nearest a chosen point of a map."""
    return "Nearest the chosen point: " + ", ".join(names) + "."


def film(film: Film, shown_frame: int) -> str:
    """A training film: how the used dimensions and the KL moved from its first frame to its last."""
    kl = film.kl_per_dim.sum(axis=1)
    return (f"{film.frames} frames from epoch {epoch_label(film.epochs[0])} to {epoch_label(film.epochs[-1])}, now "
            f"at epoch {epoch_label(film.epochs[shown_frame])}: the model used {int(film.active_units[0])} of "
            f"{film.latent_dim} dimensions at the start and {int(film.active_units[-1])} at the end, its KL going "
            f"from {kl[0]:.1f} to {kl[-1]:.1f} nats.")


def films_side_by_side(films: dict[str, Film]) -> str:
    """Compare's two films on one clock."""
    return " ".join(f"{name}: {f.frames} frames to epoch {epoch_label(f.epochs[-1])}, {int(f.active_units[-1])} of "
                    f"{f.latent_dim} dimensions used at the end." for name, f in films.items())


def sample_quality(qualities: dict, label_names: tuple[str, ...]) -> str:
    """Generate's bars: for each sampler (label -> (kind, ``SampleQuality``)), how clearly its samples
    are recognised and which labels it makes most and least often."""
    parts = []
    for sampler, (_, quality) in qualities.items():
        shares = np.asarray(quality.digit_shares)
        most, least = int(np.argmax(shares)), int(np.argmin(shares))
        parts.append(f"{sampler}: votes {quality.confidence:.0%} for the leading label, recognised most often as "
                     f"“{label_names[most]}” ({shares[most]:.0%}) and least as “{label_names[least]}” "
                     f"({shares[least]:.0%})")
    return "; ".join(parts) + "."


def board(points: list) -> str:
    """The Board's plane (``classroom.board.BoardPoint``s): the best model, and the spread of β and latent sizes."""
    if not points:
        return "No models on this plane yet."
    best = min(points, key=lambda p: p.negative_elbo)
    betas = sorted({p.beta for p in points})
    sizes = sorted({p.latent_dim for p in points})
    return (f"{len(points)} models; the lowest −ELBO is {best.name}'s, {best.negative_elbo:.1f} nats "
            f"(KL {best.rate:.1f}, BCE {best.distortion:.1f}); β from {betas[0]:g} to {betas[-1]:g}, latent sizes "
            f"{', '.join(map(str, sizes))}. The table below lists every point.")
