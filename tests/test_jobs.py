"""The app's background training job (vae/jobs.py): one run at a time, progress, stop, failures."""

import errno
import threading

import pytest
import torch

import vae.train
from harness import TINY
from vae import load_checkpoint
from vae.checkpoint import read_resume_state
from vae.jobs import TrainingJob, snapshot_model
from vae.train import TrainConfig, TrainResult


def blocking_train(config, checkpoint_path, *, stop, callback, data):
    """Stands in for vae.train.train where only the job's bookkeeping is under test."""
    stop.wait(30)
    return TrainResult("stopped", "Stopped by request.", None)


def test_a_real_run_is_recorded_and_a_second_start_is_refused(tmp_path, mnist):
    def train_and_press_stop_after_epoch_1(*args, callback, **kwargs):
        def on_event(event):
            callback(event)
            if event["kind"] == "epoch" and event["epoch"] == 1:
                job.stop()  # as a user would, but at a known moment: a tiny epoch takes milliseconds

        return vae.train.train(*args, callback=on_event, **kwargs)

    job = TrainingJob(train_fn=train_and_press_stop_after_epoch_1)
    assert job.snapshot().status == "idle"
    assert job.start(TrainConfig(**{**TINY, "epochs": 3}), tmp_path / "a.pt", data=mnist)
    assert not job.start(TrainConfig(**TINY), tmp_path / "b.pt", data=mnist), "one run at a time"
    assert job.wait(timeout=60)
    snap = job.snapshot()
    assert snap.status == "stopped" and "The best checkpoint (epoch 1) is kept." in snap.message
    assert snap.checkpoint == tmp_path / "a.pt" and snap.checkpoint.is_file()
    assert not (tmp_path / "b.pt").exists()
    assert snap.reconstructions.shape == (2, 10, 28, 28)
    steps = snap.history["steps"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and steps[3]["epoch"] == 1.0
    assert snap.history["epochs"][0]["test"]["loss"] > 0 and snap.img_per_s > 0


def test_the_snapshot_carries_the_weights_of_the_latest_finished_epoch(tmp_path, mnist):
    seen = []

    def train_and_look_after_each_epoch(*args, callback, **kwargs):
        def on_event(event):
            callback(event)
            if event["kind"] == "epoch":
                seen.append(job.snapshot())

        return vae.train.train(*args, callback=on_event, **kwargs)

    job = TrainingJob(train_fn=train_and_look_after_each_epoch)
    assert snapshot_model(job.snapshot()) is None  # before any epoch has ended
    assert job.start(TrainConfig(**{**TINY, "epochs": 2}), tmp_path / "w.pt", data=mnist)
    assert job.wait(timeout=120)
    first, last = seen
    assert (first.weights_epoch, last.weights_epoch) == (1, 2)
    # A copy as the epoch ended, not the live model: epoch 2 went on changing the weights.
    assert not torch.equal(first.weights["fc_mu.weight"], last.weights["fc_mu.weight"])
    model = snapshot_model(job.snapshot())
    stored = read_resume_state(tmp_path / "w.pt")["model"]  # the weights as the last epoch ended
    assert not model.training and model.config == TrainConfig(**TINY).model_config()
    assert all(torch.equal(value, stored[name]) for name, value in model.state_dict().items())
    assert model.train_config["beta"] == 1.0


def test_a_full_disk_fails_the_run_with_a_message_and_keeps_the_last_checkpoint(tmp_path, mnist, monkeypatch):
    real_save, writes = torch.save, []

    def save_until_the_disk_fills(*args, **kwargs):
        writes.append(1)
        if len(writes) > 2:  # epoch 1 wrote its model and resume files; epoch 2 finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    job = TrainingJob()
    assert job.start(TrainConfig(**{**TINY, "epochs": 3}), tmp_path / "full.pt", data=mnist)
    assert job.wait(timeout=60)
    snap = job.snapshot()
    assert snap.status == "failed" and snap.message.startswith("The disk is full")
    assert "The best checkpoint written before the failure is kept." in snap.message
    assert snap.checkpoint == tmp_path / "full.pt" and load_checkpoint(snap.checkpoint).metrics["epoch"] == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_start_is_atomic_across_sessions(tmp_path):
    job = TrainingJob(train_fn=blocking_train)
    barrier = threading.Barrier(8)
    results = []

    def press_start(i):
        barrier.wait()
        results.append(job.start(TrainConfig(**TINY), tmp_path / f"m{i}.pt"))

    threads = [threading.Thread(target=press_start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    job.stop()
    assert job.wait(timeout=10) and job.snapshot().status == "stopped"


@pytest.mark.parametrize("error, expected", [
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Training ran out of memory."),
    (MemoryError(), "Training ran out of memory."),
    (ValueError("bad things\nsecond line"), "Training failed: bad things."),
])
def test_an_exception_in_the_thread_is_stored_as_a_message(tmp_path, error, expected):
    def failing_train(*args, **kwargs):
        raise error

    job = TrainingJob(train_fn=failing_train)
    assert job.start(TrainConfig(**TINY), tmp_path / "m.pt")
    assert job.wait(timeout=10)
    snap = job.snapshot()
    assert snap.status == "failed" and snap.message.startswith(expected) and snap.checkpoint is None
    assert "Traceback" not in snap.message


def test_start_refuses_to_overwrite(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        TrainingJob(train_fn=blocking_train).start(TrainConfig(**TINY), tmp_path / "m.pt")
