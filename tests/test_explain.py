"""One image through the model (vae/explain.py): against a hand computation, for a VAE and an
autoencoder, on the bundled model, on a colour model, and on the command line."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from harness import BUNDLED, BUNDLED_DIR
from vae import latent, load_checkpoint, save_checkpoint
from vae.data import DatasetInfo
from vae.explain import describe, explain, source_of
from vae.model import ConvVAE, VAEConfig
from vae.preprocess import to_mnist, to_model_form

SMALL = dict(latent_dim=2, channels=2, hidden=8, encoder_hidden=8)


def small_model(variational: bool = True) -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(**SMALL, variational=variational)).eval()


def test_a_pass_equals_a_hand_computation(mnist):
    model, image = small_model(), mnist.test_images[0].numpy()
    e = explain(model, image, seed=3)

    x = image.astype(np.float64) / 255.0
    with torch.no_grad():
        mu, logvar = (t[0].double().numpy() for t in model.encode(torch.tensor(x, dtype=torch.float32)[None, None]))
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))[0].double().numpy()
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * eps
    with torch.no_grad():
        p = model.decode(torch.tensor(z, dtype=torch.float32)[None])[0, 0].double().numpy()
    bce_per_pixel = -(x * np.log(p) + (1 - x) * np.log(1 - p))  # BCE = -sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)]
    kl_per_dim = 0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))  # KL_j = (mu_j² + sigma_j² - 1 - log sigma_j²) / 2

    np.testing.assert_allclose(e.x, x, atol=1e-7)
    np.testing.assert_allclose(e.mu, mu, rtol=1e-6)
    np.testing.assert_allclose(e.logvar, logvar, rtol=1e-6)
    np.testing.assert_allclose(e.sigma, sigma, rtol=1e-6)
    np.testing.assert_allclose(e.eps, eps, rtol=1e-6)
    np.testing.assert_allclose(e.z, z, rtol=1e-5)
    np.testing.assert_allclose(e.probs, p, rtol=1e-5)
    np.testing.assert_allclose(e.bce_per_pixel, bce_per_pixel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e.kl_per_dim, kl_per_dim, rtol=1e-5, atol=1e-7)
    assert e.bce == pytest.approx(bce_per_pixel.sum(), rel=1e-5)
    assert e.kl == pytest.approx(kl_per_dim.sum(), rel=1e-5, abs=1e-6)
    assert e.kl == pytest.approx(float(e.kl_per_dim.sum()), rel=1e-6, abs=1e-6)
    assert e.loss == pytest.approx(e.bce + e.kl, rel=1e-6)
    assert e.beta == 1.0 and e.objective == pytest.approx(e.loss)  # no training config: beta 1
    with torch.no_grad():
        np.testing.assert_allclose(e.probs_mean, model.decode(torch.tensor(e.mu)[None])[0, 0].numpy(), rtol=1e-6)


def test_the_same_seed_draws_the_same_eps_and_another_seed_another(mnist):
    model, image = small_model(), mnist.test_images[1]
    a, b, c = explain(model, image, seed=5), explain(model, image, seed=5), explain(model, image, seed=6)
    np.testing.assert_array_equal(a.eps, b.eps)
    assert a.loss == b.loss
    assert not np.allclose(a.eps, c.eps) and not np.allclose(a.z, c.z)
    np.testing.assert_array_equal(a.mu, c.mu)  # only the sample moves
    np.testing.assert_array_equal(a.probs_mean, c.probs_mean)


def test_an_autoencoders_pass_has_no_sigma_eps_or_kl(mnist):
    model = small_model(variational=False)
    e = explain(model, mnist.test_images[0], seed=3)
    assert e.loss == float(latent.negative_elbo(model, mnist.test_images[:1])[0])  # the Draw page's: its BCE
    assert e.logvar is None and e.eps is None and e.kl_per_dim is None and e.sigma is None and not e.variational
    assert e.kl == 0 and e.loss == pytest.approx(e.bce) and e.bce > 0
    np.testing.assert_array_equal(e.z, e.mu)
    np.testing.assert_array_equal(e.probs, e.probs_mean)
    assert e.bce == pytest.approx(float(e.bce_per_pixel.sum()), rel=1e-5)


def test_the_bundled_model_gives_the_draw_pages_elbo_for_a_drawing(mnist):
    model = load_checkpoint(BUNDLED).model
    digit = to_mnist(mnist.test_images[7].numpy())  # an image prepared as the Draw page prepares one
    e = explain(model, digit)
    assert e.loss == float(latent.negative_elbo(model, digit)[0])  # the Draw page's estimator: one sample, seed 0
    assert e.beta == 1.0 and e.mu.shape == e.kl_per_dim.shape == (32,)
    for value in (e.bce, e.kl, e.loss, *e.mu, *e.logvar, *e.z):
        assert np.isfinite(value)
    assert 40 < e.loss < 300 and e.bce_per_pixel.min() >= 0
    # Other shapes of the same image give the same pass; other inputs are refused in words.
    as_tensor = torch.from_numpy(digit)
    for same in (as_tensor[None], as_tensor[None, None]):
        assert explain(model, same).loss == e.loss
    for bad, words in ((np.zeros((28, 29)), "one grayscale 28x28 image"), (digit * 255.0, "floats in \\[0, 1\\]"),
                       (np.full((28, 28), np.nan), "floats in \\[0, 1\\]")):
        with pytest.raises(ValueError, match=words):
            explain(model, bad)


def test_the_code_shown_is_the_running_models():
    default = source_of(load_checkpoint(BUNDLED).model)
    assert list(default) == ["encoder", "encode", "reparameterize", "decoder", "decode", "bce", "kl", "loss"]
    assert "fc_logvar = Linear(in_features=512, out_features=32" in default["encoder"]
    assert "return mu + eps * torch.exp(0.5 * logvar)" in default["reparameterize"]
    assert "binary_cross_entropy_with_logits" in default["bce"] and "def kl_per_dim" in default["kl"]
    tutorial = source_of(load_checkpoint(BUNDLED_DIR / "tutorial.pt").model)
    assert "Conv2d(16, 32, kernel_size=(5, 5)" in tutorial["encoder"]
    assert "ConvTranspose2d(32, 16, kernel_size=(5, 5)" in tutorial["decoder"]
    assert "fc_logvar" not in source_of(small_model(variational=False))["encoder"]


def test_the_command_line_prints_the_numbers_and_refuses_bad_files_in_words(tmp_path, mnist):
    digit = tmp_path / "digit.png"
    Image.fromarray(mnist.test_images[0].numpy()).save(digit)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "vae.explain", *map(str, args)], capture_output=True,
                              text=True, timeout=120)

    out = run(BUNDLED, digit, "--seed", "2", "--top", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "-ELBO" in out.stdout and "eps seed 2" in out.stdout and "beta 1" in out.stdout
    table = lines[lines.index("  dim        mu     sigma       eps         z        KL") + 1:]
    kls = [float(line.split()[-1]) for line in table]
    assert len(kls) == 3 and kls == sorted(kls, reverse=True)

    autoencoder = save_checkpoint(tmp_path / "ae.pt", small_model(variational=False))
    out = run(autoencoder, digit)
    assert out.returncode == 0 and "a plain autoencoder" in out.stdout and "by |mu|" in out.stdout, out.stderr

    (tmp_path / "junk.png").write_bytes(b"not an image")
    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    for args in ((BUNDLED, tmp_path / "missing.png"), (BUNDLED, tmp_path / "junk.png"),
                 (BUNDLED, tmp_path / "blank.png"), (tmp_path / "missing.pt", digit)):
        bad = run(*args)
        assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


# ---------------------------------------------------------------- a colour model


def colour_model(latent_dim: int = 4) -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=latent_dim, channels=2, hidden=8,
                             encoder_hidden=8)).eval()


def test_a_colour_image_goes_through_a_colour_model():
    model = colour_model()
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    e = explain(model, image)
    assert e.x.shape == e.probs.shape == e.probs_mean.shape == (3, 32, 32) and e.mu.shape == (4,)
    assert e.bce_per_pixel.shape == (32, 32)  # where the BCE is paid, summed over the colours
    assert e.bce == pytest.approx(float(e.bce_per_pixel.sum()), rel=1e-5)
    assert e.loss == float(latent.negative_elbo(model, image[None])[0])  # the Draw page's estimator
    np.testing.assert_allclose(e.x, image / 255.0, atol=1e-7)
    assert explain(model, torch.from_numpy(image)[None]).loss == e.loss
    assert "1024 pixels x 3 colours" in describe(e, 2)
    with pytest.raises(ValueError, match="the images are grayscale 32x32, but the model takes colour 32x32"):
        latent.negative_elbo(model, image[:1])
    for bad in (image[0], image[:, :28, :28], image.transpose(1, 2, 0)):
        with pytest.raises(ValueError, match="one colour 32x32 image"):
            explain(model, bad)


def test_an_upload_takes_a_colour_datasets_form():
    info = DatasetInfo(key="leaves-0123", name="Leaves", sha256="0" * 64, channels=3, size=32, label_names=(),
                       train_count=10, test_count=2, background="white")
    drawing = np.zeros((60, 30, 4), dtype=np.uint8)  # tall, transparent but for a red stripe
    drawing[:, 10:20] = (255, 0, 0, 255)
    form = to_model_form(Image.fromarray(drawing), info)
    assert form.shape == (3, 32, 32) and form.dtype == np.float32
    np.testing.assert_allclose(form[:, 16, 0], 1.0)  # the margin and the transparency: the white background
    np.testing.assert_allclose(form[:, 16, 16], (1.0, 0.0, 0.0), atol=0.03)  # the red stripe, centred
    grey = to_model_form(Image.fromarray(drawing), DatasetInfo(**{**vars(info), "channels": 1, "size": 28}))
    assert grey.shape == (28, 28) and grey[14, 14] == pytest.approx(0.299, abs=0.03)  # red's luma
    explain(colour_model(), form)  # what the command line hands the model
