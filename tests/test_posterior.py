"""The true posterior and log p(x) (vae/posterior.py), on the bundled 2-D model: the grid holds the
posterior's mass, the identity log p(x) = ELBO + KL(q || p(z|x)) holds on it, its log p(x) agrees
with importance sampling, the bounds rise with K, and the command line prints them."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from harness import BUNDLED, BUNDLED_DIR
from vae import load_checkpoint, posterior
from vae.explain import explain, model_input
from vae.model import ConvVAE, VAEConfig

LATENT2D = load_checkpoint(BUNDLED_DIR / "latent2d.pt")
ONE_MODE = (0, 1, 2)  # test digits whose posterior on latent2d has a single mode
TWO_MODES = 8  # a 5 whose posterior has two modes, q off-centre between them
WHOLE_PRIOR = 6.0  # half-width of the plain grid over the prior that checks the zoomed one
WHOLE_STEPS = 240  # per axis: 0.05 apart, as fine as the posterior of test digits 0 and 2 is wide
WIDE_ENOUGH = (0, 2)  # test digits whose posterior's σ (> 0.04) that plain grid resolves


@pytest.fixture(scope="module")
def grids(mnist):
    return {i: posterior.posterior_grid(LATENT2D.model, mnist.test_images[i].numpy()) for i in ONE_MODE}


def plain_grid_log_joint(image) -> tuple[np.ndarray, float]:
    """log p(x, z) on an even grid over [-WHOLE_PRIOR, WHOLE_PRIOR]², and the grid's cell area."""
    axis = np.linspace(-WHOLE_PRIOR, WHOLE_PRIOR, WHOLE_STEPS)
    points = torch.tensor(np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2), dtype=torch.float32)
    x = model_input(LATENT2D.model, image)
    with torch.no_grad():
        loglik = posterior.log_likelihood(LATENT2D.model, x, points)
    log_joint = (loglik.double() - 0.5 * (points.double() ** 2).sum(1) - np.log(2 * np.pi)).numpy()
    return log_joint.reshape(WHOLE_STEPS, WHOLE_STEPS), float((axis[1] - axis[0]) ** 2), axis


def test_the_zoomed_grid_holds_the_posteriors_mass(mnist, grids):
    for i in WIDE_ENOUGH:
        grid = grids[i]
        log_joint, cell, axis = plain_grid_log_joint(mnist.test_images[i].numpy())
        whole_log_px = float(np.logaddexp.reduce(log_joint.ravel()) + np.log(cell))
        assert grid.log_px == pytest.approx(whole_log_px, abs=0.05), f"test digit {i}"
        (lo1, hi1), (lo2, hi2) = grid.extent
        inside = ((axis >= lo2) & (axis <= hi2))[:, None] & ((axis >= lo1) & (axis <= hi1))[None, :]
        outside = np.exp(log_joint[~inside] + np.log(cell) - grid.log_px).sum()
        assert outside < 1e-3 and grid.mass_outside < 1e-3, f"test digit {i}: {outside:.2e} of the mass outside"
        assert len(grid.z1) <= posterior.MAX_STEPS and len(grid.z2) <= posterior.MAX_STEPS
        assert np.all(np.diff(grid.z1) > 0) and np.all(np.diff(grid.z2) > 0)
        # The grid is far finer than the prior's: q's σ here is a few hundredths in a latent spanning ±4.
        assert np.sqrt(grid.q_cov.diagonal()).max() < 0.2 and np.diff(grid.z1).min() < 0.02


def test_the_gap_summed_on_the_grid_is_log_px_minus_the_elbo(grids):
    for i, grid in grids.items():
        assert grid.gap > 0, f"test digit {i}: KL(q || p(z|x)) is positive"
        assert grid.elbo + grid.gap == pytest.approx(grid.log_px, abs=0.01), f"test digit {i}"
        # The density is normalised over the uneven grid.
        weights = np.outer(posterior._weights(grid.z2), posterior._weights(grid.z1))
        assert float((np.exp(grid.log_density) * weights).sum()) == pytest.approx(1.0, abs=1e-6)


def test_the_quadrature_agrees_with_importance_sampling(mnist, grids):
    for i, grid in grids.items():
        sampled = posterior.log_px(LATENT2D.model, mnist.test_images[i].numpy(), k=5000)
        assert sampled == pytest.approx(grid.log_px, abs=0.2), f"test digit {i}"


def test_the_elbo_on_the_grid_is_the_expectation_of_the_one_sample_elbo(mnist, grids):
    e = explain(LATENT2D, mnist.test_images[0].numpy())
    bounds = posterior.iw_bounds(LATENT2D.model, mnist.test_images[0].numpy())
    assert bounds[1] == pytest.approx(grids[0].elbo, abs=0.1)  # 1,000 samples' mean
    np.testing.assert_allclose(grids[0].q_mean, e.mu, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(grids[0].q_cov.diagonal()), e.sigma, rtol=1e-5)


def test_a_two_mode_digit_has_both_modes_and_the_higher_log_px(mnist):
    image = mnist.test_images[TWO_MODES].numpy()
    grid = posterior.posterior_grid(LATENT2D.model, image)
    assert len(grid.modes) == 2
    # Samples from q miss the other mode, so importance sampling falls far short of the quadrature.
    assert grid.log_px > posterior.log_px(LATENT2D.model, image, k=5000) + 1.0
    assert grid.gap > 10


def test_importance_weighted_bounds_rise_with_k(mnist):
    default = load_checkpoint(BUNDLED)
    bounds = posterior.iw_bounds(default.model, mnist.test_images[7].numpy())
    assert list(bounds) == list(posterior.IW_SAMPLES)
    values = list(bounds.values())
    assert all(a < b for a, b in zip(values, values[1:])), bounds
    assert posterior.log_px(default.model, mnist.test_images[7].numpy(), k=1000) == pytest.approx(values[-1], abs=1.0)
    with pytest.raises(ValueError, match="divide"):
        posterior.iw_bounds(default.model, mnist.test_images[7].numpy(), ks=(1, 3, 10))


def test_a_larger_latent_gets_a_labelled_slice_through_its_two_largest_kl_dimensions(mnist):
    default = load_checkpoint(BUNDLED)
    image = mnist.test_images[0].numpy()
    e = explain(default, image)
    grid = posterior.posterior_grid(default.model, image)
    assert grid.sliced and set(grid.dims) == set(np.argsort(-e.kl_per_dim)[:2].tolist())
    assert grid.elbo + grid.gap == pytest.approx(grid.log_px, abs=0.01)


def test_sigma_scan_and_probe_match_the_models_own_numbers(mnist):
    image = mnist.test_images[0].numpy()
    e = explain(LATENT2D, image)
    scan = posterior.sigma_scan(LATENT2D.model, image)
    own = int(np.argmin(np.abs(scan.scales - 1.0)))
    assert scan.kl[own] == pytest.approx(e.kl, rel=1e-5)  # at 1x, q is the encoder's own
    assert scan.elbo[0] < scan.elbo[own]  # a near-point q pays a large KL
    with pytest.raises(ValueError, match="infinite"):
        posterior.sigma_scan(LATENT2D.model, image, scales=[0.0, 1.0])
    at_mu = posterior.probe(LATENT2D.model, image, e.mu)
    assert at_mu.log_q == pytest.approx(-0.5 * (e.logvar + np.log(2 * np.pi)).sum(), abs=1e-4)  # q's peak
    assert -at_mu.log_likelihood == pytest.approx(float(-(image / 255 * np.log(e.probs_mean)
                                                         + (1 - image / 255) * np.log1p(-e.probs_mean)).sum()),
                                                  rel=1e-3)
    away = posterior.probe(LATENT2D.model, image, e.mu + 5 * e.sigma)
    assert away.log_q < at_mu.log_q and away.log_joint < at_mu.log_joint


def test_an_autoencoder_has_no_posterior_to_compare(mnist):
    autoencoder = load_checkpoint(BUNDLED_DIR / "autoencoder.pt")
    with pytest.raises(posterior.NotVariationalError, match="no q"):
        posterior.posterior_grid(autoencoder.model, mnist.test_images[0].numpy())
    with pytest.raises(posterior.NotVariationalError):
        posterior.log_px(autoencoder.model, mnist.test_images[0].numpy(), k=10)


def test_the_command_line_prints_log_px_at_each_k_and_the_gap(tmp_path, mnist):
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test_images[0].numpy()).save(digit)  # black on white, as a scan
    result = subprocess.run([sys.executable, "-m", "vae.posterior", str(BUNDLED_DIR / "latent2d.pt"), str(digit)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for k in posterior.IW_SAMPLES:
        assert f"\n{k:6d}  " in result.stdout
    assert "gap KL(q || p(z|x))" in result.stdout and "on a " in result.stdout and "log p(x)" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "vae.posterior", str(BUNDLED_DIR / "autoencoder.pt"), str(digit)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "no q(z|x)" in bad.stderr and "Traceback" not in bad.stderr


def test_a_colour_models_probe_and_bounds_are_of_its_colour_images():
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=2, channels=2, hidden=8,
                              encoder_hidden=8)).eval()
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    e = explain(model, image)
    probe = posterior.probe(model, image, e.mu)
    assert probe.probs.shape == (3, 32, 32)
    np.testing.assert_allclose(probe.probs, e.probs_mean, rtol=1e-6)
    assert -probe.log_likelihood == pytest.approx(float(-(image / 255 * np.log(e.probs_mean)
                                                          + (1 - image / 255) * np.log1p(-e.probs_mean)).sum()),
                                                  rel=1e-3)  # summed over every pixel and colour
    bounds = posterior.iw_bounds(model, image, ks=(1, 10))
    assert bounds[1] <= bounds[10] + 1.0 and np.isfinite(list(bounds.values())).all()
