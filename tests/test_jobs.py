"""A run's bookkeeping (classroom/jobs.py) as the queue keeps it (classroom/queue.py): progress recorded from a
real run's events, the weights of its latest epoch, names taken once, failures as messages."""

import errno
import threading

import pytest
import torch

from classroom.jobs import snapshot_model
from classroom.queue import QueueError, RunQueue
from harness import TINY, train_watching
from vae import load_checkpoint
from vae.checkpoint import read_resume_state
from vae.config import TrainConfig
from vae.events import EpochEvent
from vae.history import Metrics
from vae.train import TrainResult


def blocking_train(config, checkpoint_path, *, stop, callback, data, resume):
    """Stands in for vae.train.train where only the bookkeeping is under test."""
    stop.wait(30)
    return TrainResult("stopped", "Stopped by request.", None)


def test_a_real_runs_progress_and_weights_are_recorded_epoch_by_epoch(tmp_path, datasets):
    seen = []

    def look_and_stop_after_epoch_2(event):
        if isinstance(event, EpochEvent):
            seen.append(queue.runs()[0])
            if event.epoch == 2:
                queue.stop(seen[-1].id)  # as a user would, at a known moment

    with RunQueue(tmp_path, datasets=datasets, train_fn=train_watching(look_and_stop_after_epoch_2)) as queue:
        run = queue.submit(TrainConfig(**{**TINY, "epochs": 3}), "w")
        assert snapshot_model(run) is None  # before any epoch has ended
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
    first, last = seen
    assert run.status == "stopped" and "is kept." in run.message and run.checkpoint.is_file()
    steps = last.history.steps
    assert [s.step for s in steps] == list(range(1, len(steps) + 1)) and steps[3].epoch == 1.0
    assert last.history.epochs[0].test.loss > 0 and last.img_per_s > 0
    assert last.reconstructions.shape == (2, 10, 1, 28, 28)
    assert (first.weights_epoch, last.weights_epoch) == (1, 2)
    # A copy as the epoch ended, not the live model: epoch 2 went on changing the weights.
    assert not torch.equal(first.weights["fc_mu.weight"], last.weights["fc_mu.weight"])
    ckpt = snapshot_model(last)
    stored = read_resume_state(tmp_path / "w.pt")["model"]  # the weights as the last epoch ended
    assert not ckpt.model.training and ckpt.config == TrainConfig(**TINY).model_config()
    assert all(torch.equal(value, stored[name]) for name, value in ckpt.model.state_dict().items())
    assert ckpt.train_config == last.config and ckpt.metrics == Metrics(epoch=2) and ckpt.film is last.film
    assert ckpt.key != snapshot_model(first).key  # each epoch's model is filed apart


def test_a_full_disk_fails_the_run_with_a_message_and_keeps_the_last_checkpoint(tmp_path, datasets, monkeypatch):
    real_save, writes = torch.save, []

    def save_until_the_disk_fills(*args, **kwargs):
        writes.append(1)
        if len(writes) > 2:  # epoch 1 wrote its model and resume files; epoch 2 finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with RunQueue(tmp_path, datasets=datasets) as queue:
        run = queue.submit(TrainConfig(**{**TINY, "epochs": 3}), "full")
        assert queue.wait(run.id, timeout=60)
        run = queue.snapshot(run.id)
    assert run.status == "failed" and run.message.startswith("The disk is full")
    assert "The best checkpoint written before the failure is kept." in run.message
    assert run.checkpoint == tmp_path / "full.pt" and load_checkpoint(run.checkpoint).metrics.epoch == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_a_name_is_taken_once_by_learners_queueing_together(tmp_path):
    barrier, queued, refused = threading.Barrier(8), [], []

    def press_queue(owner):
        barrier.wait()
        try:
            queued.append(queue.submit(TrainConfig(**TINY), "same", owner=owner))
        except QueueError as e:
            refused.append(str(e))

    with RunQueue(tmp_path, train_fn=blocking_train) as queue:
        threads = [threading.Thread(target=press_queue, args=(f"learner-{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(queued) == 1 and len(refused) == 7 and "already in the queue" in refused[0]
        queue.stop(queued[0].id)
        assert queue.wait(queued[0].id, timeout=10) and queue.snapshot(queued[0].id).status == "stopped"


@pytest.mark.parametrize("error, expected", [
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Training ran out of memory."),
    (MemoryError(), "Training ran out of memory."),
    (ValueError("bad things\nsecond line"), "Training failed: bad things."),
])
def test_an_exception_in_the_run_is_stored_as_a_message(tmp_path, error, expected):
    def failing_train(*args, **kwargs):
        raise error

    with RunQueue(tmp_path, train_fn=failing_train) as queue:
        run = queue.submit(TrainConfig(**TINY), "m")
        assert queue.wait(run.id, timeout=10)
        run = queue.snapshot(run.id)
    assert run.status == "failed" and run.message.startswith(expected) and run.checkpoint is None
    assert "Traceback" not in run.message
