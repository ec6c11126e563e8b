"""``python -m vae.generate`` and ``python -m vae.eval`` for a model of any dataset: the dataset comes
from the checkpoint, ``--label`` takes a name or an index (``--digit`` still works), and what cannot
be done (no labels, an unknown label, a dataset not found here) is said in words."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from harness import BUNDLED
from vae import eval as eval_cli
from vae import generate, save_checkpoint
from vae.config import TrainConfig
from vae.data import MNIST_INFO, Dataset, DatasetInfo
from vae.model import ConvVAE
from vae.settings import configure

COLOUR = dict(image_channels=3, image_size=32, latent_dim=4, channels=2, hidden=8, encoder_hidden=8)


def colour_dataset(label_names: tuple[str, ...], n: int = 90) -> Dataset:
    """A tiny hand-made colour dataset, [n, 3, 32, 32], its labels taken in turn (all 0 when unlabelled)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % max(1, len(label_names))
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    info = DatasetInfo(key="mine-0123", name="Mine", sha256="0" * 64, channels=3, size=32, label_names=label_names,
                       train_count=n - 12, test_count=12, background="black")
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    return Dataset(info, images[12:], labels[12:], images[:12], labels[:12])


@pytest.fixture
def colour_model(tmp_path, monkeypatch):
    """An untrained colour model's checkpoint of a dataset the test sets, which ``checkpoint_data`` hands out."""
    configure(data_dir=tmp_path / "data")  # the training means' cache, away from the project's

    def of(label_names: tuple[str, ...]):
        data = colour_dataset(label_names)
        monkeypatch.setattr(generate, "checkpoint_data", lambda ckpt: data)
        torch.manual_seed(0)
        config = TrainConfig(**COLOUR, data=data.info.key, val_size=0.1)
        return save_checkpoint(tmp_path / "colour.pt", ConvVAE(config.model_config()),
                               train_config=asdict(config), dataset=data.info.to_dict())
    return of


def test_label_takes_a_name_or_an_index_and_refuses_others_in_words():
    named = colour_dataset(("cat", "dog", "owl")).info
    assert generate.label_index(named, "owl") == 2 and generate.label_index(named, "1") == 1
    assert generate.label_index(MNIST_INFO, "7") == 7
    with pytest.raises(ValueError, match=r"Mine has no label 'emu'; its labels are cat, dog, owl"):
        generate.label_index(named, "emu")
    with pytest.raises(ValueError, match="no label '3'"):
        generate.label_index(named, "3")
    with pytest.raises(ValueError, match="Mine is unlabelled"):
        generate.label_index(colour_dataset(()).info, "0")


def test_the_bundled_model_samples_a_label_by_label_or_by_digit(tmp_path, capsys):
    grid = tmp_path / "sevens.png"
    assert generate.main([str(BUNDLED), "--sampler", "label", "--label", "7", "--grid", "3", "--out", str(grid)]) == 0
    out = capsys.readouterr().out
    assert Image.open(grid).size == (2 * (3 * 29 + 1),) * 2
    assert float(out.split("recognised as a 7: ")[1].split("%")[0]) >= 80 and "9: " in out
    assert generate.main([str(BUNDLED), "--sampler", "digit", "--digit", "7"]) == 0  # the names from before
    assert capsys.readouterr().out.splitlines()[-1] == out.splitlines()[-1]
    assert generate.main([str(BUNDLED), "--sampler", "label", "--label", "seven"]) == 1
    assert "MNIST has no label 'seven'" in capsys.readouterr().err


def test_a_named_colour_datasets_model_samples_and_recognises_by_name(colour_model, tmp_path, capsys):
    path = colour_model(("cat", "dog", "owl"))
    grid = tmp_path / "owls.png"
    assert generate.main([str(path), "--sampler", "label", "--label", "owl", "--grid", "2", "--out", str(grid)]) == 0
    out = capsys.readouterr().out
    assert Image.open(grid).mode == "RGB" and "recognised as an owl: " in out and "cat: " in out
    upload = tmp_path / "upload.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(upload)
    assert generate.main([str(path), "--recognise", str(upload)]) == 0
    verdict = capsys.readouterr().out
    assert "training images" in verdict and ("Looks like" in verdict or "Unsure" in verdict)


def test_an_unlabelled_datasets_model_samples_but_has_no_labels(colour_model, tmp_path, capsys):
    path = colour_model(())
    grid = tmp_path / "prior.png"
    assert generate.main([str(path), "--sampler", "prior", "--grid", "2", "--out", str(grid)]) == 0
    out = capsys.readouterr().out
    assert Image.open(grid).mode == "RGB" and "recognised" not in out
    for args in (["--sampler", "label", "--label", "0"], ["--recognise", str(grid)]):
        assert generate.main([str(path), *args]) == 1
        assert "Mine is unlabelled" in capsys.readouterr().err


def test_a_dataset_not_found_here_is_said_in_words(tmp_path, capsys):
    configure(data_dir=tmp_path / "data")
    info = DatasetInfo(key="gone-0123", name="Gone", sha256="0" * 64, channels=3, size=32, label_names=("a", "b"),
                       train_count=10, test_count=2, background="black")
    config = TrainConfig(**COLOUR, data=info.key, val_size=0.1)
    path = save_checkpoint(tmp_path / "gone.pt", ConvVAE(config.model_config()), train_config=asdict(config),
                           dataset=info.to_dict())
    for main in (generate.main, eval_cli.main):
        assert main([str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: gone.pt was trained on Gone (dataset 'gone-0123'), which cannot be loaded here")
