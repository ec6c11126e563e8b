"""Sampling where the data is: a Gaussian per label (MNIST's digits, or any labelled set's) and a
mixture over the training means."""

import numpy as np
import pytest
import torch

from vae import latent, samplers
from vae.model import ConvVAE, VAEConfig
from vae.neighbours import DigitVote


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


# ---------------------------------------------------------------- any labelled dataset


def test_a_labels_gaussian_and_the_sample_quality_follow_any_datasets_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [30, 30, 5])
    means = rng.normal(scale=0.3, size=(len(labels), 4)).astype(np.float32)
    means[:, 0] += (labels - 1) * 10.0
    names = ("cat", "dog", "owl")
    gaussian = samplers.fit_digit(means, labels, 1, names)
    assert gaussian.digit == 1 and gaussian.examples == 30 and abs(gaussian.mean[0]) < 0.5
    with pytest.raises(samplers.TooFewExamplesError, match=r"Only 5 training images are owl images; .* at least 8"):
        samplers.fit_digit(means, labels, 2, names)
    with pytest.raises(ValueError, match="no label 3"):
        samplers.fit_digit(means, labels, 3, names)

    model = ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=4, channels=2, hidden=8, encoder_hidden=8))
    images = torch.from_numpy(rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8))
    vote = DigitVote(latent.encode(model, images)[0], labels, names)
    quality = samplers.sample_quality(model, vote, gaussian.sample(50))
    assert quality.label_names == names and quality.digit_shares.shape == (3,)
    assert quality.digit_shares.sum() == pytest.approx(1.0) and len(quality.digits) == 50


def test_a_mixture_fits_a_set_smaller_than_its_components():
    z = samplers.mixture_samples(samplers.fit_mixture(np.random.default_rng(0).normal(size=(6, 2)), components=20), 10)
    assert z.shape == (10, 2)
