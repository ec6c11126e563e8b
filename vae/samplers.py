"""Where to draw latents from: the prior, a mixture fitted to where the training images landed, or
a Gaussian fitted to one label's training means; and how recognisable each one's samples are.

A VAE's encoder does not spread the training images over all of N(0, I): their posteriors (the
"aggregate posterior") crowd into clusters with gaps between them, so a latent drawn from the
prior often lands in a gap and decodes to a blur. Fitting a density to the training means after
training and drawing from it samples where the data is. Fitting one Gaussian per label (a digit
of MNIST, any label of a labelled dataset) gives "draw me a 7" from an unsupervised VAE:
conditioning after the fact, not a conditional VAE, which would learn p(x | z, label) during
training. Only a labelled dataset has labels to sample by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import latent
from .checkpoint import Checkpoint
from .data import training_indices
from .neighbours import SURE_FROM, VOTERS, DigitVote, LabelWords, label_names_of

MIXTURE_COMPONENTS = 20  # full-covariance Gaussians in the mixture: a few per MNIST digit
MIXTURE_TOL = 1e-2  # EM stops when the mean log-likelihood gains less: a third of the iterations of
# scikit-learn's 1e-3 and samples as recognisable (bench/RESULTS.md)
JITTER = 1e-4  # added to each covariance's diagonal: inactive dimensions' means barely vary
QUALITY_SAMPLES = 1000


class TooFewExamplesError(ValueError):
    """A label has too few training means for a full-covariance Gaussian in this latent size."""


def min_examples(latent_dim: int) -> int:
    """Training means a label needs for its Gaussian: twice the latent size, so that the covariance
    is estimated from more points than it has dimensions."""
    return 2 * latent_dim


@dataclass(frozen=True)
class DigitGaussian:
    """N(mean, covariance) fitted to one label's training means."""

    digit: int  # the label
    mean: np.ndarray  # [d]
    covariance: np.ndarray  # [d, d]
    examples: int

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n latents [n, d], the same for the same seed."""
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.mean, self.covariance, size=n, method="cholesky").astype(np.float32)


def own_training_means(ckpt: Checkpoint, means: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the training split's ``means`` [N, d] and ``labels`` [N] that the checkpoint's
    model trained on (its run's split): the samplers fit to where those landed, not images it never saw."""
    rows = training_indices(ckpt.train_config, len(means))[0].numpy()
    return means[rows], np.asarray(labels)[rows]


def fit_digit(means: np.ndarray, labels: np.ndarray, digit: int,
              label_names: Sequence[str] | None = None) -> DigitGaussian:
    """The Gaussian of the label ``digit``'s means among ``means`` [N, d] with ``labels`` [N]
    (named by ``label_names``, the dataset's; None: their own numbers, as MNIST's digits); raises
    TooFewExamplesError (with a message for the user) when it has fewer than ``min_examples``."""
    labels = np.asarray(labels)
    words = LabelWords(label_names_of(labels, label_names))
    if not 0 <= digit < len(words.names):
        raise ValueError(f"there is no label {digit}: the labels are 0 to {len(words.names) - 1}")
    own = np.asarray(means, dtype=np.float64)[labels == digit]
    needed = min_examples(means.shape[1])
    if len(own) < needed:
        raise TooFewExamplesError(
            f"Only {len(own)} training {words.noun}s are {words.many(digit)}; a Gaussian over {means.shape[1]} "
            f"latent dimensions needs at least {needed}."
        )
    covariance = np.cov(own, rowvar=False) + JITTER * np.eye(means.shape[1])
    return DigitGaussian(digit, own.mean(axis=0), covariance, len(own))


def fit_mixture(means: np.ndarray, components: int = MIXTURE_COMPONENTS, seed: int = 0):
    """A full-covariance Gaussian mixture (scikit-learn) fitted to the training means [N, d]: of
    ``components`` Gaussians, or one per mean for a set smaller than that."""
    from sklearn.mixture import GaussianMixture

    mixture = GaussianMixture(n_components=min(components, len(means)), covariance_type="full", reg_covar=JITTER,
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

    digits: np.ndarray  # [n] the leading label of each sample's vote
    shares: np.ndarray  # [n] that label's share of the votes: 1.0 is unanimous
    label_names: tuple[str, ...]  # the dataset's, one per label

    @property
    def digit_shares(self) -> np.ndarray:
        """[labels] the share of samples recognised as each label."""
        return np.bincount(self.digits, minlength=len(self.label_names)) / len(self.digits)

    @property
    def confidence(self) -> float:
        """The mean share of the votes the leading label got."""
        return float(self.shares.mean())

    @property
    def sure(self) -> float:
        """The share of samples the Draw page's vote would name a label for (not "unsure")."""
        return float(np.mean(self.shares >= SURE_FROM / VOTERS))

    def share_of(self, digit: int) -> float:
        return float(np.mean(self.digits == digit))


def sample_quality(model, vote: DigitVote, z: np.ndarray) -> SampleQuality:
    """Decode latents [n, d], encode the pictures again and let ``vote`` say what each one shows:
    a sample is judged by the image a user sees, not by where its latent was drawn."""
    pictures = latent.decode(model, z)
    mu, _ = latent.encode(model, pictures)
    return SampleQuality(*vote.recognise(mu), label_names=vote.label_names)
