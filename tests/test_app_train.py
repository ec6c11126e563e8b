"""Training from the app: name checks and the Train page over the queue of runs (the queue itself:
test_runs.py)."""

import threading

import pytest
import torch

import vae.train
from harness import TINY
from harness.apptest import fill_form, press_queue, run_app
from harness.wait import until
from studio import resources
from vae.config import TrainConfig
from vae.device import precision_label
from vae.events import StepEvent


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a b", "x.pt", "", "é", "x" * 65, ".."])
def test_unsafe_names_are_refused(checkpoint_dir, name):
    with pytest.raises(ValueError, match="letters, digits"):
        resources.new_checkpoint_path(name)


def test_names_stay_in_the_checkpoint_folder_and_never_overwrite(checkpoint_dir):
    assert resources.new_checkpoint_path(" my_model-2 ") == checkpoint_dir / "my_model-2.pt"
    assert resources.new_checkpoint_path("x" * 64).parent == checkpoint_dir
    with pytest.raises(ValueError, match="already exists"):
        resources.new_checkpoint_path("default")


@pytest.mark.parametrize("values, reasons", [
    ({"epochs": 0}, ["Epochs must be an integer in [1, 1000], got 0"]),
    ({"lr": 0.0}, ["Learning rate must be a number in [1e-06, 1], got 0.0"]),
    ({"beta": -1.0}, ["β must be a number in [0, 100], got -1.0"]),
    ({"latent_dim": 0}, ["Latent size must be an integer in [1, 512], got 0"]),
    ({"batch_size": 0}, ["Batch size must be an integer in [1, 4096], got 0"]),
    ({"name": "../x"}, ["The name may use only letters, digits, '-' and '_' (1 to 64 characters), got '../x'."]),
    ({"name": "default"}, ["A model named 'default' already exists; choose another name."]),
    ({"name": "/etc/x", "val_size": -1}, ["Validation images must be an integer in [0, 10000], got -1",
                                          "The name may use only letters, digits"]),
    ({"iw_epochs": 11}, ["IW epochs must be an integer in [0, 10] (at most epochs=10), got 11"]),
    ({"iw_epochs": 2, "iw_samples": 0}, ["IW samples must be an integer in [1, 64], got 0"]),
    ({"iw_epochs": 2, "beta": 0.5}, ["The importance-weighted epochs bound log p(x) itself, so they need beta 1"]),
])
def test_the_form_rejects_bad_values_with_the_reason(run_queue, checkpoint_dir, values, reasons):
    at = press_queue(fill_form(run_app("pages/train.py"), **values))
    lines = at.error[0].value.splitlines()
    assert lines[0] == "Cannot queue:" and len(lines) == 1 + len(reasons)
    for line, reason in zip(lines[1:], reasons):
        assert line.startswith(f"- {reason}")
    assert run_queue.runs() == []
    assert sorted(p.name for p in checkpoint_dir.iterdir() if p.is_file()) == ["default.pt"]


def test_train_from_the_page_queue_another_watch_them_and_use_the_model(run_queue, checkpoint_dir):
    at = press_queue(fill_form(run_app("pages/train.py"), name="tiny", iw_epochs=1, **TINY))
    assert run_queue.runs()[0].running
    assert at.get("progress"), "a progress bar while it runs"
    assert any(b.key == "train_stop" for b in at.button)

    at = press_queue(fill_form(at, name="tiny"))
    assert "A run named 'tiny' is already in the queue" in at.error[0].value, "told before anything is queued"
    at = press_queue(fill_form(at, name="tiny2", **{**TINY, "epochs": 1}))
    first, second = run_queue.runs()
    assert (second.name, second.status) == ("tiny2", "queued"), "one run at a time: the second waits its turn"
    waiting = "Waiting for its turn behind 1 run: tiny (running)."
    assert any(waiting in i.value for i in at.info), "the page follows the run just queued"
    table = at.dataframe(key="train_runs").value
    assert list(table["Name"]) == ["tiny", "tiny2"] and list(table[""]) == ["★", "★"]

    at.session_state["train_runs"] = {"selection": {"rows": [0], "columns": []}}  # watch the first again
    at.run()
    until(lambda: run_queue.snapshot(first.id).step >= 1)
    at.run()
    assert "img/s" in at.get("progress")[0].proto.text and at.get("plotly_chart")
    expected = precision_label("auto", torch.device("cpu"))
    caption = next(c.value for c in at.caption if c.value.startswith("conv VAE"))
    assert caption.endswith(f"2-sample IW bound from epoch 1 · {expected} on this server"), "objective, precision"
    assert run_queue.snapshot(first.id).config.fine_tune_start == 0
    assert run_queue.wait(first.id, timeout=120) and run_queue.wait(second.id, timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Finished 1 epochs")
    assert at.get("plotly_chart"), "an ended run's curves, from its file"
    assert at.sidebar.selectbox(key=resources.ACTIVE_KEY).options[0] == "default"
    assert set(at.sidebar.selectbox(key=resources.ACTIVE_KEY).options) == {"default", "tiny", "tiny2"}
    next(b for b in at.button if b.key == "train_use").click().run()
    assert at.session_state[resources.ACTIVE_KEY] == str(checkpoint_dir / "tiny.pt")
    at.switch_page("pages/home.py").run()
    assert "The active model: tiny" in [h.value for h in at.header]


def test_a_sweep_queues_a_run_per_beta_named_after_the_form(run_queue, checkpoint_dir):
    at = fill_form(run_app("pages/train.py"), name="class", **{**TINY, "epochs": 1})
    at.text_input(key="train_sweep_betas").set_value("0.5 1 4")
    next(b for b in at.button if b.label == "Sweep β").click().run()
    assert not at.exception, at.exception
    queued = run_queue.runs()
    assert [(r.name, r.config.beta, r.config.train_size) for r in queued] == [
        ("class-beta0p5", 0.5, TINY["train_size"]), ("class-beta1", 1.0, TINY["train_size"]),
        ("class-beta4", 4.0, TINY["train_size"])]
    at.text_input(key="train_sweep_betas").set_value("0.5 x")
    next(b for b in at.button if b.label == "Sweep β").click().run()
    assert "The β values must be numbers" in at.error[0].value and len(run_queue.runs()) == 3
    for run in queued:
        run_queue.stop(run.id)


def test_stop_from_the_page(run_queue, checkpoint_dir):
    at_first_step, stop_pressed = threading.Event(), threading.Event()

    def train_holding_at_the_first_step(*args, callback, **kwargs):
        def on_event(event):
            callback(event)
            if isinstance(event, StepEvent) and not at_first_step.is_set():
                at_first_step.set()
                stop_pressed.wait(30)  # Stop lands in epoch 1 however fast the device runs an epoch

        return vae.train.train(*args, callback=on_event, **kwargs)

    run_queue._executor._train = train_holding_at_the_first_step
    at = press_queue(fill_form(run_app("pages/train.py"), name="stopped", **{**TINY, "epochs": 2}))
    assert at_first_step.wait(60)
    run = run_queue.runs()[0]
    until(lambda: run_queue.snapshot(run.id).step >= 1)
    assert run.config.iw_samples == TrainConfig().iw_samples, "no IW epochs: the library's objective"
    at.run()
    next(b for b in at.button if b.key == "train_stop").click().run()
    stop_pressed.set()
    assert run_queue.snapshot(run.id).status in ("stopping", "stopped")
    assert run_queue.wait(run.id, timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert at.warning[0].value.startswith("Stopped by request during epoch 1.")
    assert not (checkpoint_dir / "stopped.pt").exists(), "no epoch completed, so nothing is kept"


def test_a_failed_run_shows_an_error_not_a_traceback(run_queue, checkpoint_dir):
    def failing_train(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")

    run_queue._executor._train = failing_train
    at = press_queue(fill_form(run_app("pages/train.py"), name="oom", **TINY))
    assert run_queue.wait(run_queue.runs()[0].id, timeout=10)
    at.run()
    assert not at.exception, at.exception
    assert at.error[0].value == "Training ran out of memory. Try a smaller batch size or a smaller model."


def test_choosing_the_tutorial_architecture_loads_its_recipe(run_queue):
    at = run_app("pages/train.py")
    at.selectbox(key="train_arch").set_value("tutorial").run()
    recipe = TrainConfig.tutorial()
    assert at.number_input(key="train_latent_dim").value == recipe.latent_dim
    assert at.number_input(key="train_lr").value == recipe.lr
    at.selectbox(key="train_arch").set_value("conv").run()
    assert at.number_input(key="train_lr").value == TrainConfig().lr
    assert not at.exception and not at.warning
