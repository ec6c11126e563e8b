import subprocess
import sys

import pytest
import torch
from PIL import Image

from harness import BUNDLED, BUNDLED_DIR
from vae import load_checkpoint


def run(*args, check=True):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_train_help_lists_the_options():
    out = run("vae.train", "--help").stdout
    for flag in ("--epochs", "--latent-dim", "--beta", "--preset", "--resume", "--kl-warmup-epochs", "--precision",
                 "--iw-samples", "--iw-epochs", "--autoencoder"):
        assert flag in out


def test_train_then_eval_on_the_command_line(tmp_path):
    ckpt = tmp_path / "cli.pt"
    tiny = ["--train-size", "512", "--val-size", "256", "--channels", "8", "--hidden", "32", "--latent-dim", "4"]
    out = run("vae.train", "--epochs", "1", *tiny, "--out", str(ckpt)).stdout
    assert ckpt.is_file() and "Best epoch 1: test -ELBO" in out

    again = run("vae.train", "--epochs", "1", *tiny, "--out", str(ckpt), check=False)
    assert again.returncode == 2 and "exists" in again.stderr  # never a silent overwrite

    resumed = run("vae.train", "--epochs", "2", *tiny, "--out", str(ckpt), "--resume").stdout
    assert "Best epoch 2" in resumed

    report = run("vae.eval", str(ckpt)).stdout  # the whole test set, as training measured the kept model
    stored = load_checkpoint(ckpt).metrics.test
    assert float(report.split("test -ELBO")[1].split()[0]) == pytest.approx(stored.loss, abs=0.006)

    report = run("vae.eval", str(ckpt), "--iw", "5", "--limit", "200").stdout
    assert "test -ELBO" in report and "importance-weighted, K=5" in report
    elbo = float(report.split("test -ELBO")[1].split()[0])
    iw = float(report.split("-log p(x)")[1].split()[0])
    assert iw <= elbo + 1.0  # the IW bound is tighter (up to sampling noise)


def test_an_autoencoder_trains_and_evaluates_on_the_command_line_and_refuses_what_it_lacks(tmp_path):
    ckpt = tmp_path / "ae.pt"
    tiny = ["--train-size", "512", "--val-size", "256", "--channels", "8", "--hidden", "32", "--latent-dim", "4"]
    out = run("vae.train", "--autoencoder", "--epochs", "1", *tiny, "--out", str(ckpt)).stdout
    assert "Training conv autoencoder" in out and "Best epoch 1" in out
    assert not load_checkpoint(ckpt).config.variational
    report = run("vae.eval", str(ckpt)).stdout
    assert "test BCE" in report and "a plain autoencoder" in report and "-ELBO" not in report
    iw = run("vae.eval", str(ckpt), "--iw", "5", "--limit", "100", check=False)
    assert iw.returncode == 1 and "error: an autoencoder has no posterior" in iw.stderr and "Traceback" not in iw.stderr
    beta = run("vae.train", "--autoencoder", "--beta", "4", "--out", str(tmp_path / "b.pt"), check=False)
    assert beta.returncode == 2 and "an autoencoder has no KL term" in beta.stderr and "Traceback" not in beta.stderr


def test_bad_values_and_files_give_clear_errors(tmp_path):
    bad = run("vae.train", "--lr", "-1", "--out", str(tmp_path / "x.pt"), check=False)
    assert bad.returncode == 2 and "lr must be" in bad.stderr and "Traceback" not in bad.stderr
    huge = run("vae.train", "--latent-dim", "1000000", "--out", str(tmp_path / "x.pt"), check=False)
    assert (huge.returncode, huge.stderr) == (2, "error: latent_dim must be an integer in [1, 512], got 1000000\n")
    (tmp_path / "junk.pt").write_text("not a model")
    junk = run("vae.eval", str(tmp_path / "junk.pt"), check=False)
    assert junk.returncode == 1 and "error:" in junk.stderr and "Traceback" not in junk.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA on a machine without it")
def test_asking_for_a_missing_gpu_says_so(tmp_path):
    for cli, args in (("vae.train", ["--out", str(tmp_path / "x.pt")]), ("vae.eval", [str(BUNDLED)])):
        result = run(cli, *args, "--device", "cuda", check=False)
        assert result.returncode in (1, 2) and "no usable CUDA GPU" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("name, line", [("default.pt", "test -ELBO"), ("latent2d.pt", "test -ELBO"),
                                        ("autoencoder.pt", "test BCE")])
def test_bundled_checkpoints_evaluate(name, line):
    path = BUNDLED_DIR / name
    report = run("vae.eval", str(path), "--limit", "500").stdout
    assert line in report


def test_generate_a_chosen_digit_and_recognise_a_drawing_on_the_command_line(tmp_path, mnist):
    grid = tmp_path / "sevens.png"
    out = run("vae.generate", str(BUNDLED), "--sampler", "digit", "--digit", "7", "--grid", "5",
              "--out", str(grid)).stdout
    assert Image.open(grid).size == (2 * (5 * 29 + 1),) * 2  # 5 x 5 digits, 1 px between, doubled
    share = float(out.split("recognised as a 7: ")[1].split("%")[0])
    assert share >= 80, out

    digit = tmp_path / "digit.png"
    Image.fromarray(mnist.test_images[0].numpy().reshape(28, 28)).save(digit)  # test #0 is a 7
    assert "Looks like a 7:" in run("vae.generate", str(BUNDLED), "--recognise", str(digit)).stdout

    (tmp_path / "broken.png").write_bytes(b"not an image")
    broken = run("vae.generate", str(BUNDLED), "--recognise", str(tmp_path / "broken.png"), check=False)
    assert broken.returncode == 1 and broken.stderr.startswith("error:") and "Traceback" not in broken.stderr
    missing = run("vae.generate", str(BUNDLED), "--sampler", "digit", check=False)
    assert missing.returncode == 2 and "--digit" in missing.stderr
