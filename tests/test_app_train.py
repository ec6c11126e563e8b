"""Training from the app: name checks and the Train page (the job manager: test_jobs.py)."""

import threading

import pytest
import torch

import studio
import vae.train
from harness import TINY
from harness.apptest import fill_form, press_start, run_app, wait_until
from vae.device import precision_label
from vae.train import TrainConfig


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a b", "x.pt", "", "é", "x" * 65, ".."])
def test_unsafe_names_are_refused(checkpoint_dir, name):
    with pytest.raises(ValueError, match="letters, digits"):
        studio.new_checkpoint_path(name)


def test_names_stay_in_the_checkpoint_folder_and_never_overwrite(checkpoint_dir):
    assert studio.new_checkpoint_path(" my_model-2 ") == checkpoint_dir / "my_model-2.pt"
    assert studio.new_checkpoint_path("x" * 64).parent == checkpoint_dir
    with pytest.raises(ValueError, match="already exists"):
        studio.new_checkpoint_path("default")


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
    at_first_step, stop_pressed = threading.Event(), threading.Event()

    def train_holding_at_the_first_step(*args, callback, **kwargs):
        def on_event(event):
            callback(event)
            if event["kind"] == "step" and not at_first_step.is_set():
                at_first_step.set()
                stop_pressed.wait(30)  # Stop lands in epoch 1 however fast the device runs an epoch

        return vae.train.train(*args, callback=on_event, **kwargs)

    job._train = train_holding_at_the_first_step
    at = press_start(fill_form(run_app("pages/train.py"), name="stopped", **{**TINY, "epochs": 2}))
    assert at_first_step.wait(60)
    wait_until(lambda: job.snapshot().step >= 1)
    assert job.snapshot().config.iw_samples == TrainConfig().iw_samples, "no IW epochs: the library's objective"
    at.run()
    next(b for b in at.button if b.key == "train_stop").click().run()
    stop_pressed.set()
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
