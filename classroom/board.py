"""The class's board: every model as a point on the rate-distortion plane (Alemi et al., 2018,
"Fixing a Broken ELBO"). Rate is the KL of the posterior from the prior, distortion the
reconstruction's BCE, both in nats per test image; their sum is the -ELBO, so lines of equal -ELBO
run diagonally, and β trades one for the other along a frontier. Nats of one dataset are not
nats of another, so each dataset has a plane of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vae.checkpoint import CheckpointError, read_checkpoint, stored_dataset, stored_metrics, stored_train_config
from vae.history import History

UNTRAINED_FACTOR = 2.0  # a −ELBO more than this many times the best model's: a run that has barely trained


@dataclass(frozen=True)
class BoardPoint:
    """One model where it stands: ``rate`` (KL) and ``distortion`` (BCE) on the test set."""

    name: str
    path: Path | None  # its file; None for a run still training
    beta: float
    latent_dim: int
    dataset: str  # the key of the dataset it learned: points of one dataset share a plane
    rate: float
    distortion: float
    trail: tuple[tuple[float, float], ...] = ()  # (rate, distortion) after each epoch, for a run in progress
    owner: str = ""  # who queued the run that made it, as the app names them; "" for a file no run of the queue made

    @property
    def negative_elbo(self) -> float:
        return self.rate + self.distortion

    @property
    def training(self) -> bool:
        return self.path is None


def model_point(path: str | Path) -> BoardPoint | None:
    """A checkpoint's point, from its stored test metrics; None for a plain autoencoder (which has no
    rate to plot: its code is a point, not a distribution) or a file without test metrics.
    CheckpointError for a file that cannot be read."""
    payload = read_checkpoint(path)
    test, config = stored_metrics(payload, Path(path).name).test, stored_train_config(payload)
    if test is None or not config.variational:
        return None
    dataset = stored_dataset(payload, config.model_config(), Path(path).name)
    return BoardPoint(Path(path).stem, Path(path), float(config.beta), int(config.latent_dim), dataset.key,
                      test.kl, test.bce)


def run_point(name: str, beta: float, latent_dim: int, dataset: str, history: History) -> BoardPoint | None:
    """A run in progress, at its latest epoch's test metrics with the way it came; None before its
    first epoch ends."""
    trail = tuple((r.test.kl, r.test.bce) for r in history.epochs)
    if not trail:
        return None
    return BoardPoint(name, None, float(beta), int(latent_dim), dataset, *trail[-1], trail=trail)


def untrained_limit(points: list[BoardPoint]) -> float:
    """The −ELBO above which a model is an untrained run: ``UNTRAINED_FACTOR`` times the best point's.
    Runs too short to learn much (1 epoch on 2,000 images sits near 372 nats, trained models near
    90-110, the 2-D latent near 141) would stretch the board's axes and crowd the rest into a corner."""
    return UNTRAINED_FACTOR * min(p.negative_elbo for p in points)


def board(paths) -> tuple[list[BoardPoint], list[str]]:
    """(the points of the models in ``paths``, why each file left out could not be read)."""
    points, problems = [], []
    for path in paths:
        try:
            point = model_point(path)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if point is not None:
            points.append(point)
    return points, problems
