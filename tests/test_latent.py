"""vae.latent with the bundled models and the real test set, and studio's cache
of the maps built from them."""

import numpy as np
import pytest
import torch

import vae
from harness import BUNDLED_DIR
from studio import analysis, resources
from vae import latent
from vae.metrics import evaluate


@pytest.fixture(scope="module")
def model2d():
    return vae.load_checkpoint(BUNDLED_DIR / "latent2d.pt").model


@pytest.fixture(scope="module")
def encoded(model, mnist):
    """Posterior means/log-variances of a 600-digit test subset, and its indices."""
    indices = latent.test_subset(600)
    mu, logvar = latent.encode(model, mnist.test_images[indices])
    return indices, mu, logvar


def test_encode_decode_shapes_and_progress(model, mnist):
    calls = []
    mu, logvar = latent.encode(model, mnist.test_images[:250], batch_size=100,
                               progress=lambda done, total: calls.append((done, total)))
    assert mu.shape == logvar.shape == (250, model.latent_dim) and mu.dtype == np.float32
    assert calls == [(100, 250), (200, 250), (250, 250)]
    one_mu, _ = latent.encode(model, mnist.test_images[3].numpy() / 255.0)  # one float image
    np.testing.assert_allclose(one_mu[0], mu[3], atol=1e-4)
    images = latent.decode(model, mu[:5])
    assert images.shape == (5, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert latent.decode(model, mu[0]).shape == (1, 28, 28)


def test_reconstructions_resemble_their_inputs(model, mnist):
    x = mnist.test_images[:50].numpy() / 255.0
    mu, _ = latent.encode(model, x)
    error = np.abs(latent.decode(model, mu) - x).mean()
    assert error < 0.1


def test_samples_are_seeded(model):
    a = latent.prior_samples(6, model.latent_dim, seed=3)
    assert a.shape == (6, model.latent_dim)
    np.testing.assert_array_equal(a, latent.prior_samples(6, model.latent_dim, seed=3))
    assert not np.array_equal(a, latent.prior_samples(6, model.latent_dim, seed=4))
    mu, logvar = np.zeros(4, np.float32), np.log(np.full(4, 0.25, np.float32))
    z = latent.posterior_samples(mu, logvar, 4000, seed=0)
    assert z.shape == (4000, 4) and z.std(axis=0) == pytest.approx(np.full(4, 0.5), rel=0.05)


def test_test_subsets_are_fixed_and_nested():
    small, large = latent.test_subset(500), latent.test_subset(2000)
    assert len(small) == 500 and len(np.unique(large)) == 2000
    assert np.isin(small, large).all()
    np.testing.assert_array_equal(small, latent.test_subset(500))
    assert len(latent.test_subset(20_000)) == 10_000


def test_nearest_neighbours(encoded):
    _, mu, _ = encoded
    idx, dist = latent.nearest(mu, mu[17], 5)
    assert idx[0] == 17 and dist[0] == pytest.approx(0, abs=1e-5)
    brute = np.argsort(np.linalg.norm(mu - mu[17], axis=1))[:5]
    np.testing.assert_array_equal(idx, brute)
    assert np.all(np.diff(dist) >= 0)


def test_nearest_test_digits_share_the_label_mostly(encoded, mnist):
    indices, mu, _ = encoded
    labels = mnist.test_labels.numpy()[indices]
    agree = [labels[latent.nearest(mu, mu[i], 2)[0][1]] == labels[i] for i in range(len(indices))]
    assert np.mean(agree) > 0.8  # chance is about 0.1; the bundled default scores 0.85 on these 600


def test_label_agreement_counts_the_neighbours_sharing_a_label():
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    assert latent.label_agreement(points, np.array([0, 0, 0, 1, 1, 1]), k=2) == 1.0
    # alternating labels: of each point's 2 neighbours, 1, 0, 1, 1, 0, 1 share its label
    assert latent.label_agreement(points, np.array([0, 1, 0, 1, 0, 1]), k=2) == pytest.approx(1 / 3)


def test_inverse_distance_mix():
    values = np.array([[0.0, 0.0], [3.0, 3.0]])
    np.testing.assert_allclose(latent.inverse_distance_mix(values, np.array([1.0, 2.0])), [1.0, 1.0])
    np.testing.assert_array_equal(latent.inverse_distance_mix(values, np.array([0.0, 2.0])), [0.0, 0.0])


def test_pca_projection_round_trip(encoded):
    _, mu, _ = encoded
    proj = latent.project(mu, "pca")
    assert proj.coords.shape == (len(mu), 2) and proj.exact_inverse
    xy = proj.coords[:10]
    z = proj.to_latents(xy)
    assert z.shape == (10, mu.shape[1])
    for point, back in zip(xy, z):  # map -> latent -> map is the identity
        np.testing.assert_allclose(proj.to_map(back), point, atol=1e-3)
    np.testing.assert_allclose(proj.to_latent(xy[0]), z[0], atol=1e-5)
    # the plane's latent is the closest point to the original on the PCA plane
    assert np.linalg.norm(z[0] - mu[0]) < np.linalg.norm(mu[0] - mu.mean(axis=0)) + 1e-6


def test_raw_projection_needs_two_dimensions(model2d, encoded, mnist):
    with pytest.raises(ValueError, match="2-D latent"):
        latent.project(encoded[1], "raw")
    with pytest.raises(ValueError, match="method must be"):
        latent.project(encoded[1], "umap")
    mu, _ = latent.encode(model2d, mnist.test_images[:100])
    proj = latent.project(mu, "raw")
    np.testing.assert_array_equal(proj.coords, mu)
    np.testing.assert_array_equal(proj.to_latent((0.5, -1.0)), [0.5, -1.0])
    np.testing.assert_array_equal(proj.to_map(mu[3]), mu[3])
    (x0, x1), (y0, y1) = proj.extent()
    assert x0 < mu[:, 0].min() and mu[:, 0].max() < x1 and y0 < mu[:, 1].min() and mu[:, 1].max() < y1


def test_tsne_on_a_small_subset(encoded):
    _, mu, _ = encoded
    proj = latent.project(mu[:150], "tsne", perplexity=30, seed=0)
    assert proj.coords.shape == (150, 2) and np.isfinite(proj.coords).all() and not proj.exact_inverse
    # a location exactly on a point decodes that point's latent; between points, a mix of neighbours
    np.testing.assert_allclose(proj.to_latent(proj.coords[4]), mu[4], atol=1e-6)
    between = proj.to_latent(proj.coords[:2].mean(axis=0))
    assert between.shape == (mu.shape[1],)
    np.testing.assert_allclose(proj.to_map(mu[4]), proj.coords[4], atol=1e-5)
    assert proj.to_latents(proj.coords[:3]).shape == (3, mu.shape[1])


def test_tsne_maps_are_kept_on_disk_and_remade_when_damaged(encoded, tmp_path, monkeypatch, caplog):
    _, mu, _ = encoded
    first = latent.cached_tsne(mu[:120], 20, 0, tmp_path)
    (kept,) = tmp_path.glob("tsne-*.npy")
    np.testing.assert_array_equal(np.load(kept), first)
    real_tsne, runs = latent.tsne, []
    monkeypatch.setattr(latent, "tsne", lambda *args: runs.append(args) or real_tsne(*args))
    np.testing.assert_array_equal(latent.cached_tsne(mu[:120], 20, 0, tmp_path), first)  # a restarted server
    assert not runs
    latent.cached_tsne(mu[:120], 25, 0, tmp_path)  # other settings, another map
    latent.cached_tsne(mu[1:121], 20, 0, tmp_path)  # other latents (another model or subset), another map
    assert len(runs) == 2 and len(list(tmp_path.glob("tsne-*.npy"))) == 3
    kept.write_bytes(kept.read_bytes()[:100])  # truncated
    np.testing.assert_array_equal(latent.cached_tsne(mu[:120], 20, 0, tmp_path), first)
    assert len(runs) == 3 and np.load(kept).shape == (120, 2)  # remade and rewritten
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert latent.cached_tsne(mu[:120], 20, 0, blocked / "tsne").shape == (120, 2)  # cannot write: still a map
    assert "Could not keep the t-SNE map" in caplog.text
    assert not list(tmp_path.rglob("*.tmp"))


def test_tsne_map_keeps_the_digits_apart(encoded, mnist):
    indices, mu, _ = encoded
    labels = mnist.test_labels.numpy()[indices]
    coords = latent.tsne(mu, perplexity=30, seed=0)
    assert coords.shape == (len(mu), 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    # of 10 neighbours among 600 digits, chance shares about 0.1 of the labels; the bundled default:
    # about 0.7 in its latent space, about 0.77 on this map and on scikit-learn's t-SNE map
    agreement = latent.label_agreement(coords, labels)
    assert agreement > 0.6 and agreement > latent.label_agreement(mu, labels) - 0.05


def test_projections_are_cached_per_model_and_settings():
    ckpt = resources.load(BUNDLED_DIR / "default.pt")
    indices, proj = analysis._projection(ckpt, 250, "tsne", 30.0, 0)
    np.testing.assert_array_equal(indices, latent.test_subset(250))
    assert proj.coords.shape == (250, 2) and proj.method == "tsne"
    assert analysis._projection(ckpt, 250, "tsne", 30.0, 0)[1] is proj  # served from the cache
    assert analysis._projection(ckpt, 250, "tsne", 20.0, 0)[1] is not proj  # new settings, new map


def test_grid_points_run_like_the_plot():
    grid = latent.grid_points((0, 2), (10, 20), 3)
    assert grid.shape == (9, 2)
    np.testing.assert_allclose(grid[0], [0, 20])  # top-left first
    np.testing.assert_allclose(grid[2], [2, 20])
    np.testing.assert_allclose(grid[-1], [2, 10])


def test_interpolation_endpoints_and_slerp_norms():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(16).astype(np.float32), 2 * rng.standard_normal(16).astype(np.float32)
    for method in ("linear", "slerp"):
        path = latent.interpolate(z0, z1, 7, method)
        assert path.shape == (7, 16)
        np.testing.assert_allclose(path[0], z0, atol=1e-5)
        np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    np.testing.assert_allclose(latent.interpolate(z0, z1, 3, "linear")[1], (z0 + z1) / 2, atol=1e-6)
    norms = np.linalg.norm(latent.interpolate(z0, z1, 5, "slerp"), axis=1)
    np.testing.assert_allclose(norms, np.linspace(np.linalg.norm(z0), np.linalg.norm(z1), 5), rtol=1e-4)
    np.testing.assert_allclose(latent.interpolate(z0, 3 * z0, 4, "slerp"), latent.interpolate(z0, 3 * z0, 4), atol=1e-5)
    with pytest.raises(ValueError):
        latent.interpolate(z0, z1, 3, "cubic")


def test_traversal_moves_one_dimension_per_row():
    z = np.arange(6, dtype=np.float32)
    paths = latent.traversal(z, [4, 1], span=2.0, steps=5)
    assert paths.shape == (2, 5, 6)
    np.testing.assert_allclose(paths[0, :, 4], [2, 3, 4, 5, 6])
    np.testing.assert_allclose(paths[1, :, 1], [-1, 0, 1, 2, 3])
    untouched = np.delete(paths[0], 4, axis=1)
    np.testing.assert_array_equal(untouched, np.tile(np.delete(z, 4), (5, 1)))


def test_kl_per_dimension_sums_to_the_models_kl(encoded):
    _, mu, logvar = encoded
    kl = latent.kl_per_dimension(mu, logvar)
    assert kl.shape == (mu.shape[1],) and (kl >= -1e-6).all()
    total = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1).mean()
    assert kl.sum() == pytest.approx(total, rel=1e-5)


def test_negative_elbo_matches_the_reported_metric(model, mnist):
    images = mnist.test_images[:500]
    per_image = latent.negative_elbo(model, images, batch_size=250)
    assert per_image.shape == (500,)
    assert per_image.mean() == pytest.approx(evaluate(model, images, batch_size=250).loss, rel=1e-5)
    assert latent.percentile_of(per_image.min() - 1, per_image) == 0
    assert latent.percentile_of(per_image.max() + 1, per_image) == 100
    assert latent.percentile_of(np.median(per_image), per_image) == pytest.approx(50, abs=1)


def test_an_autoencoders_codes_have_no_log_variances_and_its_elbo_is_its_bce(mnist):
    torch.manual_seed(0)
    autoencoder = vae.ConvVAE(vae.VAEConfig(latent_dim=4, channels=4, hidden=16, variational=False))
    codes, logvars = latent.encode(autoencoder, mnist.test_images[:300], batch_size=100)
    assert codes.shape == (300, 4) and logvars is None
    per_image = latent.negative_elbo(autoencoder, mnist.test_images[:300])
    metrics = evaluate(autoencoder, mnist.test_images[:300])
    assert metrics.kl == 0 and per_image.mean() == pytest.approx(metrics.bce, rel=1e-6)
