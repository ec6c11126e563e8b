"""Training from the app: the job manager (vae/jobs.py), name checks, and the Train page."""

import errno
import threading

import pytest
import torch

import studio
import vae.train
from apptest_helpers import run_app, wait_until
from vae import load_checkpoint
from vae.jobs import TrainingJob
from vae.train import TrainConfig, TrainResult, precision_label

TINY = dict(train_size=512, val_size=256, batch_size=128, epochs=1)


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


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a b", "x.pt", "", "é", "x" * 65, ".."])
def test_unsafe_names_are_refused(checkpoint_dir, name):
    with pytest.raises(ValueError, match="letters, digits"):
        studio.new_checkpoint_path(name)


def test_names_stay_in_the_checkpoint_folder_and_never_overwrite(checkpoint_dir):
    assert studio.new_checkpoint_path(" my_model-2 ") == checkpoint_dir / "my_model-2.pt"
    assert studio.new_checkpoint_path("x" * 64).parent == checkpoint_dir
    with pytest.raises(ValueError, match="already exists"):
        studio.new_checkpoint_path("default")


def fill_form(at, **values):
    for key, value in values.items():
        widget = at.text_input(key="train_name") if key == "name" else \
            at.selectbox(key="train_arch") if key == "arch" else at.number_input(key=f"train_{key}")
        widget.set_value(value)
    return at


def press_start(at):
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("values, reasons", [
    ({"epochs": 0}, ["Epochs must be an integer >= 1, got 0"]),
    ({"lr": 0.0}, ["Learning rate must be in (0, 1], got 0.0"]),
    ({"beta": -1.0}, ["β must be a finite number >= 0, got -1.0"]),
    ({"latent_dim": 0}, ["Latent size must be a positive integer, got 0"]),
    ({"batch_size": 0}, ["Batch size must be an integer in [1, 65536], got 0"]),
    ({"name": "../x"}, ["The name may use only letters, digits, '-' and '_' (1 to 64 characters), got '../x'."]),
    ({"name": "default"}, ["A model named 'default' already exists; choose another name."]),
    ({"name": "/etc/x", "val_size": -1}, ["Validation images must be in [0, 60000), got -1",
                                          "The name may use only letters, digits"]),
    ({"iw_epochs": 11}, ["IW epochs must be an integer in [0, epochs=10], got 11"]),
    ({"iw_epochs": 2, "iw_samples": 0}, ["IW samples must be an integer in [1, 64], got 0"]),
    ({"iw_epochs": 2, "beta": 0.5}, ["The importance-weighted epochs bound log p(x) itself, so they need beta 1"]),
])
def test_the_form_rejects_bad_values_with_the_reason(checkpoint_dir, job, values, reasons):
    at = press_start(fill_form(run_app("pages/train.py"), **values))
    lines = at.error[0].value.splitlines()
    assert lines[0] == "Cannot start:" and len(lines) == 1 + len(reasons)
    for line, reason in zip(lines[1:], reasons):
        assert line.startswith(f"- {reason}")
    assert job.snapshot().status == "idle"
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == ["default.pt"]


def test_train_from_the_page_watch_it_and_use_the_model(checkpoint_dir, job):
    at = press_start(fill_form(run_app("pages/train.py"), name="tiny", iw_epochs=1, **TINY))
    assert job.snapshot().running
    assert at.get("progress"), "a progress bar while it runs"
    assert any(b.key == "train_stop" for b in at.button)

    at = press_start(fill_form(at, name="tiny2"))
    assert "already in progress" in at.warning[0].value
    assert not (checkpoint_dir / "tiny2.pt").exists()

    wait_until(lambda: job.snapshot().step >= 1)
    at.run()
    assert "img/s" in at.get("progress")[0].proto.text and at.get("plotly_chart")
    expected = precision_label("auto", torch.device("cpu"))
    caption = next(c.value for c in at.caption if c.value.startswith("conv VAE"))
    assert caption.endswith(f"2-sample IW bound from epoch 1 · {expected} on CPU"), "objective, precision, device"
    assert job.snapshot().config.fine_tune_start == 0
    wait_until(lambda: not job.snapshot().running)
    at.run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Finished 1 epochs")
    assert at.get("image"), "the reconstruction grid"
    assert at.sidebar.selectbox(key=studio.ACTIVE_KEY).options == ["default", "tiny"]
    next(b for b in at.button if b.key == "train_use").click().run()
    assert at.session_state[studio.ACTIVE_KEY] == str(checkpoint_dir / "tiny.pt")
    assert at.sidebar.selectbox(key=studio.ACTIVE_KEY).value == str(checkpoint_dir / "tiny.pt")
    at.switch_page("pages/home.py").run()
    assert at.header[0].value == "The active model: tiny"


def test_stop_from_the_page(checkpoint_dir, job):
    at = press_start(fill_form(run_app("pages/train.py"), name="stopped", **{**TINY, "train_size": 30000, "epochs": 2}))  # epochs of ~10 s: Stop lands in epoch 1
    wait_until(lambda: job.snapshot().step >= 1)
    assert job.snapshot().config.iw_samples == TrainConfig().iw_samples, "no IW epochs: the library's objective"
    at.run()
    next(b for b in at.button if b.key == "train_stop").click().run()
    assert job.snapshot().status in ("stopping", "stopped")
    assert job.wait(timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert at.warning[0].value.startswith("Stopped by request during epoch 1.")
    assert not (checkpoint_dir / "stopped.pt").exists(), "no epoch completed, so nothing is kept"


def test_a_failed_run_shows_an_error_not_a_traceback(checkpoint_dir, job):
    def failing_train(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")

    job._train = failing_train
    at = press_start(fill_form(run_app("pages/train.py"), name="oom", **TINY))
    job.wait(timeout=10)
    at.run()
    assert not at.exception, at.exception
    assert at.error[0].value == "Training ran out of memory. Try a smaller batch size or a smaller model."


def test_choosing_the_tutorial_architecture_loads_its_recipe(checkpoint_dir, job):
    at = run_app("pages/train.py")
    at.selectbox(key="train_arch").set_value("tutorial").run()
    recipe = TrainConfig.tutorial()
    assert at.number_input(key="train_latent_dim").value == recipe.latent_dim
    assert at.number_input(key="train_lr").value == recipe.lr
    at.selectbox(key="train_arch").set_value("conv").run()
    assert at.number_input(key="train_lr").value == TrainConfig().lr
    assert not at.exception and not at.warning
