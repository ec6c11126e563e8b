"""Sampling where the data is: a Gaussian per digit and a mixture over the training means."""

import numpy as np
import pytest

from vae import latent, samplers


@pytest.mark.parametrize("digit", [1, 7])
def test_a_digits_gaussian_generates_that_digit(model, means, mnist, vote, digit):
    gaussian = samplers.fit_digit(means, mnist.train_labels.numpy(), digit)
    z = gaussian.sample(samplers.QUALITY_SAMPLES, seed=3)
    np.testing.assert_array_equal(z, gaussian.sample(samplers.QUALITY_SAMPLES, seed=3))
    quality = samplers.sample_quality(model, vote, z)
    assert quality.share_of(digit) >= 0.8
    assert quality.digit_shares.sum() == pytest.approx(1.0)


def test_too_few_examples_says_so_instead_of_sampling(means, mnist):
    labels = mnist.train_labels.numpy()[:400]  # about 40 of each digit, under 2 x 32
    with pytest.raises(samplers.TooFewExamplesError, match=r"training digits are 3s; .* at least 64"):
        samplers.fit_digit(means[:400], labels, 3)


def test_mixture_samples_are_deterministic_and_beat_the_prior(model, means, vote):
    mixture = samplers.fit_mixture(means[::3], components=10)
    z = samplers.mixture_samples(mixture, 500, seed=1)
    assert z.shape == (500, model.latent_dim) and z.dtype == np.float32
    np.testing.assert_array_equal(z, samplers.mixture_samples(mixture, 500, seed=1))
    assert not np.array_equal(z, samplers.mixture_samples(mixture, 500, seed=2))
    prior = samplers.sample_quality(model, vote, latent.prior_samples(500, model.latent_dim, seed=1))
    mixed = samplers.sample_quality(model, vote, z)
    assert mixed.confidence > prior.confidence and mixed.sure > prior.sure
