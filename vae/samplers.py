"""Where to draw latents from: the prior, a mixture fitted to where the training digits landed, or a
Gaussian fitted to one digit's training means; and how recognisable each one's samples are.

A VAE's encoder does not spread the training digits over all of N(0, I): their posteriors (the
"aggregate posterior") crowd into clusters with gaps between them, so a latent drawn from the
prior often lands in a gap and decodes to a blur. Fitting a density to the training means after
training and drawing from it samples where the data is. Fitting one Gaussian per digit gives
"draw me a 7" from an unsupervised VAE: conditioning after the fact, not a conditional VAE, which
would learn p(x | z, digit) during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import latent
from .checkpoint import Checkpoint
from .data import training_indices
from .neighbours import SURE_FROM, VOTERS, DigitVote

MIXTURE_COMPONENTS = 20  # full-covariance Gaussians in the mixture: a few per digit
MIXTURE_TOL = 1e-2  # EM stops when the mean log-likelihood gains less: a third of the iterations of
# scikit-learn's 1e-3 and samples as recognisable (bench/RESULTS.md)
JITTER = 1e-4  # added to each covariance's diagonal: inactive dimensions' means barely vary
QUALITY_SAMPLES = 1000


class TooFewExamplesError(ValueError):
    """A digit has too few training means for a full-covariance Gaussian in this latent size."""


def min_examples(latent_dim: int) -> int:
    """Training means a digit needs for its Gaussian: twice the latent size, so that the covariance
    is estimated from more points than it has dimensions."""
    return 2 * latent_dim


@dataclass(frozen=True)
class DigitGaussian:
    """N(mean, covariance) fitted to one digit's training means."""

    digit: int
    mean: np.ndarray  # [d]
    covariance: np.ndarray  # [d, d]
    examples: int

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n latents [n, d], the same for the same seed."""
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.mean, self.covariance, size=n, method="cholesky").astype(np.float32)


def own_training_means(ckpt: Checkpoint, means: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the training split's ``means`` [N, d] and ``labels`` [N] that the checkpoint's
    model trained on (its run's split): the samplers fit to where those landed, not digits it never saw."""
    rows = training_indices(ckpt.train_config, len(means))[0].numpy()
    return means[rows], np.asarray(labels)[rows]


def fit_digit(means: np.ndarray, labels: np.ndarray, digit: int) -> DigitGaussian:
    """The Gaussian of ``digit``'s means among ``means`` [N, d] with ``labels`` [N]; raises
    TooFewExamplesError (with a message for the user) when it has fewer than ``min_examples``."""
    own = np.asarray(means, dtype=np.float64)[np.asarray(labels) == digit]
    needed = min_examples(means.shape[1])
    if len(own) < needed:
        raise TooFewExamplesError(
            f"Only {len(own)} training digits are {digit}s; a Gaussian over {means.shape[1]} latent "
            f"dimensions needs at least {needed}."
        )
    covariance = np.cov(own, rowvar=False) + JITTER * np.eye(means.shape[1])
    return DigitGaussian(digit, own.mean(axis=0), covariance, len(own))


def fit_mixture(means: np.ndarray, components: int = MIXTURE_COMPONENTS, seed: int = 0):
    """A full-covariance Gaussian mixture (scikit-learn) fitted to the training means [N, d]."""
    from sklearn.mixture import GaussianMixture

    mixture = GaussianMixture(n_components=components, covariance_type="full", reg_covar=JITTER,
                              tol=MIXTURE_TOL, max_iter=200, random_state=seed)
    return mixture.fit(np.asarray(means, dtype=np.float64))


def mixture_samples(mixture, n: int, seed: int = 0) -> np.ndarray:
    """n latents [n, d] from a fitted mixture, the same for the same seed (scikit-learn's
    ``sample`` draws from the random state it was fitted with, so it is reseeded here)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, mixture.weights_)
    parts = [rng.multivariate_normal(mixture.means_[c], mixture.covariances_[c], size=k, method="cholesky")
             for c, k in enumerate(counts) if k]
    z = np.concatenate(parts)[rng.permutation(n)]
    return z.astype(np.float32)


# ---------------------------------------------------------------- how good are the samples


@dataclass(frozen=True)
class SampleQuality:
    """What the k-NN vote makes of n decoded samples of one sampler."""

    digits: np.ndarray  # [n] the leading digit of each sample's vote
    shares: np.ndarray  # [n] that digit's share of the votes: 1.0 is unanimous

    @property
    def digit_shares(self) -> np.ndarray:
        """[10] the share of samples recognised as each digit."""
        return np.bincount(self.digits, minlength=10) / len(self.digits)

    @property
    def confidence(self) -> float:
        """The mean share of the votes the leading digit got."""
        return float(self.shares.mean())

    @property
    def sure(self) -> float:
        """The share of samples the Draw page's vote would name a digit for (not "unsure")."""
        return float(np.mean(self.shares >= SURE_FROM / VOTERS))

    def share_of(self, digit: int) -> float:
        return float(np.mean(self.digits == digit))


def sample_quality(model, vote: DigitVote, z: np.ndarray) -> SampleQuality:
    """Decode latents [n, d], encode the pictures again and let ``vote`` say what each one shows:
    a sample is judged by the image a user sees, not by where its latent was drawn."""
    pictures = latent.decode(model, z)
    mu, _ = latent.encode(model, pictures)
    return SampleQuality(*vote.recognise(mu))
