import hashlib
import signal
import subprocess
import sys
from dataclasses import FrozenInstanceError, fields

import pytest
import torch

from harness import BUNDLED_DIR
from vae import CheckpointError, ConvVAE, VAEConfig, load_checkpoint, save_checkpoint
from vae.checkpoint import read_checkpoint
from vae.config import TrainConfig
from vae.data import MNIST_INFO
from vae.history import EpochRecord, History, IWScore, Metrics, Scores, StepRecord
from vae.model import LATER_FIELDS

METRICS = {"epoch": 3, "val": {"loss": 1.5, "bce": 1.0, "kl": 0.5}, "test": {"loss": 1.0, "bce": 0.75, "kl": 0.25}}


def epoch_record(epoch: int, loss: float = 99.5) -> dict:
    """An epoch's record as vae.train writes it."""
    scores = {"loss": loss, "bce": loss - 10, "kl": 10.0}
    return {"epoch": epoch, "seconds": 4.5, "train_seconds": 4.0 * epoch, "img_per_s": 900.0, "train": scores,
            "val": scores, "test": scores}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(latent_dim=4, channels=4, hidden=16))
    path = save_checkpoint(tmp_path / "m.pt", model, metrics=METRICS)
    return model, path


def test_round_trip(saved):
    model, path = saved
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.model.training
    assert loaded.metrics == Metrics(epoch=3, val=Scores(1.5, 1.0, 0.5), test=Scores(1.0, 0.75, 0.25))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()))
    assert not list(path.parent.glob(".*tmp"))  # the temp file was renamed away


def test_a_checkpoint_is_a_frozen_record_keyed_by_its_bytes(saved, tmp_path):
    model, path = saved
    ckpt = load_checkpoint(path)
    assert ckpt.path == path and ckpt.name == "m" and ckpt.history == History() and ckpt.trained_on == {}
    assert ckpt.film is None and ckpt.film_error is None
    with pytest.raises(FrozenInstanceError):
        ckpt.metrics = Metrics()
    with pytest.raises(FrozenInstanceError):
        ckpt.metrics.test.loss = 0.0
    # A file without a train_config has one of its model's fields and today's defaults for the rest.
    assert isinstance(ckpt.train_config, TrainConfig) and ckpt.train_config.model_config() == model.config
    assert ckpt.train_config.beta == TrainConfig().beta
    # The key is the hash of the bytes: the same at another path, another once the file changes.
    assert ckpt.key == hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    assert load_checkpoint(copy).key == ckpt.key
    save_checkpoint(path, model, metrics={**METRICS, "epoch": 4})
    assert load_checkpoint(path).key != ckpt.key


def test_history_round_trips_exactly_and_is_stored_as_tensors(saved, tmp_path):
    model, _ = saved
    steps = [{"step": i, "epoch": i / 7, "loss": 500.0 / (i + 1), "bce": 1 / 3, "kl": 1e-9 * i} for i in range(1, 50)]
    history = {"steps": steps, "epochs": [epoch_record(1)]}
    path = save_checkpoint(tmp_path / "h.pt", model, history=history)
    assert load_checkpoint(path).history.to_dict() == history
    assert load_checkpoint(path).history.steps[1] == StepRecord(step=2, epoch=2 / 7, loss=500.0 / 3, bce=1 / 3, kl=2e-9)
    assert isinstance(read_checkpoint(path)["history"]["steps"][0]["step"], int)
    raw = torch.load(path, weights_only=True)["history"]["steps"]  # columns: 0.3 s less to unpickle in the app
    assert set(raw) == set(steps[0]) and all(isinstance(c, torch.Tensor) and len(c) == 49 for c in raw.values())
    raw = torch.load(path, weights_only=True)
    raw["history"]["steps"] = {"loss": [1.0]}  # not a column of numbers
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="history is unreadable"):
        load_checkpoint(path)


def test_missing_empty_truncated_and_garbage_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "half.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "half.pt")
    (tmp_path / "text.pt").write_text("hello, I am a text file")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")


def test_foreign_torch_file(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a VAE Studio checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickle_carrying_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "vae-studio", "version": 1, "payload": RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_incompatible_architecture(saved, tmp_path):
    _, path = saved
    payload = read_checkpoint(path)
    payload["model_config"]["latent_dim"] = 8  # weights are for latent 4
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "bad.pt")
    payload["model_config"]["arch"] = "transformer"
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_file_from_before_the_later_layer_fields_is_refused_with_the_fields_it_lacks(saved, tmp_path):
    _, path = saved
    payload = read_checkpoint(path)
    for field in ("decoder_convs_7x7", "decoder_convs_14x14", "output_kernel"):  # as version 3 first wrote them
        del payload["model_config"][field]
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="lacks decoder_convs_7x7, decoder_convs_14x14, output_kernel"):
        load_checkpoint(tmp_path / "old.pt")


@pytest.mark.parametrize("name", ["default.pt", "latent2d.pt", "tutorial.pt", "beta1.pt", "beta4.pt", "autoencoder.pt"])
def test_a_bundled_files_history_and_metrics_are_typed_records_that_give_back_its_dicts(name):
    payload, ckpt = read_checkpoint(BUNDLED_DIR / name), load_checkpoint(BUNDLED_DIR / name)
    assert ckpt.history.to_dict() == payload["history"] and ckpt.metrics.to_dict() == payload["metrics"]
    last = ckpt.history.epochs[-1]
    assert isinstance(last, EpochRecord) and last.test == Scores.from_dict(payload["history"]["epochs"][-1]["test"])
    assert len(ckpt.history.steps) == len(payload["history"]["steps"]) and ckpt.history.steps[-1].epoch == last.epoch
    metrics = payload["metrics"]
    assert (ckpt.metrics.epoch, ckpt.metrics.test.loss) == (metrics["epoch"], metrics["test"]["loss"])
    assert (ckpt.metrics.test_iw is None) == (name == "autoencoder.pt")  # vae.eval --save measured the VAEs'


def test_an_older_record_without_the_optional_fields_loads_and_writes_back_as_it_was(saved, tmp_path):
    model, _ = saved
    epoch = {k: v for k, v in epoch_record(1).items() if k != "train_seconds"}  # as the queue kept a run's epochs
    history = {"steps": [], "epochs": [{**epoch, "val": {}}]}  # {}: a run without a validation split
    metrics = {**METRICS, "val": {}}  # no test_iw: not measured
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "old.pt", model, history=history, metrics=metrics))
    assert (ckpt.history.epochs[0].train_seconds, ckpt.history.epochs[0].val) == (None, None)
    assert (ckpt.metrics.val, ckpt.metrics.test_iw) == (None, None)
    assert ckpt.history.to_dict() == history and ckpt.metrics.to_dict() == metrics
    measured = Metrics.from_dict({**metrics, "test_iw": {"k": 100, "nll": 88.5}})
    assert measured.test_iw == IWScore(k=100, nll=88.5) and measured.to_dict()["test_iw"] == {"k": 100, "nll": 88.5}


def test_a_record_without_a_field_every_file_has_is_refused_naming_it(saved, tmp_path):
    model, _ = saved
    epochs = [epoch_record(1), epoch_record(2)]
    del epochs[1]["test"]["loss"]
    with pytest.raises(CheckpointError, match="bad.pt is corrupt: its epoch 2 has no 'loss'"):
        load_checkpoint(save_checkpoint(tmp_path / "bad.pt", model, history={"steps": [], "epochs": epochs}))
    with pytest.raises(CheckpointError, match="its metrics has no 'test'"):
        load_checkpoint(save_checkpoint(tmp_path / "bad.pt", model, metrics={"epoch": 1, "val": {}}))
    with pytest.raises(CheckpointError, match="its epoch 1 is unreadable"):
        load_checkpoint(save_checkpoint(tmp_path / "bad.pt", model,
                                        history={"steps": [], "epochs": [{**epoch_record(1), "seconds": "soon"}]}))


@pytest.mark.parametrize("name", ["default.pt", "latent2d.pt", "tutorial.pt", "beta4.pt", "autoencoder.pt"])
def test_bundled_files_write_out_every_field(name):
    payload = read_checkpoint(BUNDLED_DIR / name)
    # Every bundled file was written before the image form, the autoencoder after ``variational``.
    later = set(LATER_FIELDS) - ({"variational"} if name == "autoencoder.pt" else set())
    assert set(payload["model_config"]) | later == {f.name for f in fields(VAEConfig)}
    assert set(payload["train_config"]) | later | {"data"} == {f.name for f in fields(TrainConfig)}
    assert "dataset" not in payload and load_checkpoint(BUNDLED_DIR / name).dataset == MNIST_INFO
    ckpt = load_checkpoint(BUNDLED_DIR / name)
    assert ckpt.config.variational == (name != "autoencoder.pt")
    assert ckpt.train_config == TrainConfig.from_dict({**LATER_FIELDS, **payload["train_config"]})
    assert ckpt.train_config.model_config() == ckpt.config


def test_an_autoencoder_round_trips_and_a_file_without_the_field_is_a_vae(saved, tmp_path):
    torch.manual_seed(0)
    autoencoder = ConvVAE(VAEConfig(latent_dim=4, channels=4, hidden=16, variational=False))
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ae.pt", autoencoder))
    assert not loaded.config.variational and loaded.model.fc_logvar is None
    assert all(torch.equal(a, b) for a, b in zip(autoencoder.state_dict().values(), loaded.model.state_dict().values()))
    _, path = saved
    payload = read_checkpoint(path)
    del payload["model_config"]["variational"]  # as every file written before it
    torch.save(payload, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt").config.variational


def test_newer_version_is_named(saved, tmp_path):
    _, path = saved
    payload = read_checkpoint(path)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_failed_write_leaves_the_previous_file_intact(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*tmp"))


WRITER = """
import os, sys, time
from vae import ConvVAE, VAEConfig, save_checkpoint

def replace_after_a_pause(src, dst, real_replace=os.replace):
    print("written, not yet renamed", flush=True)
    time.sleep(60)  # the test kills the process here: the new data sits only in the temp file
    real_replace(src, dst)

model = ConvVAE(VAEConfig(latent_dim=4, channels=4, hidden=16))
save_checkpoint(sys.argv[1], model, metrics={"epoch": 1, "val": {}, "test": {"loss": 1.0, "bce": 1.0, "kl": 0.0}})
print("first file complete", flush=True)
os.replace = replace_after_a_pause
save_checkpoint(sys.argv[1], model, metrics={"epoch": 2, "val": {}, "test": {"loss": 1.0, "bce": 1.0, "kl": 0.0}})
"""


def test_a_process_killed_mid_write_leaves_the_last_complete_file(tmp_path):
    path = tmp_path / "m.pt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "first file complete"
        assert writer.stdout.readline().strip() == "written, not yet renamed"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert len(list(tmp_path.glob(".m.pt.*.tmp"))) == 1  # the interrupted write, left behind
    assert load_checkpoint(path).metrics.epoch == 1  # the previous file, whole
    assert [p.name for p in tmp_path.glob("*.pt")] == ["m.pt"]  # the temp file is not a model
