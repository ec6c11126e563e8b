import pickle
import threading
from dataclasses import replace

import pytest
import torch

import vae.train as train_mod
from studio.figures import loss_figure
from vae import CheckpointError, load_checkpoint
from vae.config import TrainConfig
from vae.data import to_float
from vae.events import EndEvent, EpochEvent, StepEvent
from vae.loss import LossParts
from vae.metrics import evaluate
from vae.model import ConfigError, ConvVAE
from vae.train import learning_rate, make_optimizer, train, train_step

TINY = dict(train_size=1024, val_size=512, batch_size=128, channels=8, hidden=64, latent_dim=8, lr=3e-3)


def test_short_run_lowers_loss_and_checkpoint_loads_back_identically(tmp_path, mnist):
    events = []
    result = train(TrainConfig(epochs=3, **TINY), tmp_path / "m.pt", callback=events.append, data=mnist)
    assert result.status == "finished" and result.checkpoint == tmp_path / "m.pt"
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(epochs) == 3 and len(steps) == 3 * 8 and isinstance(events[-1], EndEvent)
    assert epochs[-1].test.loss < epochs[0].test.loss < steps[0].loss
    assert epochs[-1].reconstructions.shape == (2, 10, 1, 28, 28)
    assert list(map(type, pickle.loads(pickle.dumps(events)))) == list(map(type, events))  # as a Ray worker sends them
    ckpt = load_checkpoint(result.checkpoint)
    assert not ckpt.model.training and ckpt.metrics.epoch == result.best.epoch
    # The file holds the best epoch's weights: evaluating them gives exactly the recorded metrics.
    assert evaluate(ckpt.model, mnist.test_images).to_dict() == pytest.approx(ckpt.metrics.test.to_dict(), rel=1e-6)
    assert ckpt.history == result.history and len(ckpt.history.epochs) == 3 and len(ckpt.history.steps) == 24
    assert [e.record for e in epochs] == list(result.history.epochs) and events[-1].best == result.best


def test_same_seed_same_weights(tmp_path, mnist):
    a = train(TrainConfig(epochs=1, **TINY), tmp_path / "a.pt", data=mnist)
    b = train(TrainConfig(epochs=1, **TINY), tmp_path / "b.pt", data=mnist)
    wa, wb = (load_checkpoint(r.checkpoint).model.state_dict() for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_stop_then_resume_matches_an_uninterrupted_run(tmp_path, mnist):
    config = TrainConfig(epochs=2, **TINY)
    straight = train(config, tmp_path / "straight.pt", data=mnist)

    stop = threading.Event()
    first = train(config, tmp_path / "resumed.pt", data=mnist, stop=stop,
                  callback=lambda e: stop.set() if isinstance(e, EpochEvent) else None)
    assert first.status == "stopped" and "best checkpoint (epoch 1)" in first.message
    assert load_checkpoint(tmp_path / "resumed.pt").metrics.epoch == 1

    assert (tmp_path / "resumed.resume").is_file()  # the resume state sits beside the model file
    resumed = train(config, tmp_path / "resumed.pt", data=mnist, resume=True)
    assert resumed.status == "finished"
    assert [e.epoch for e in resumed.history.epochs] == [1, 2]
    assert resumed.best.test.to_dict() == pytest.approx(straight.best.test.to_dict(), rel=1e-5)


def test_a_stop_mid_epoch_keeps_the_file_at_the_last_whole_epoch(tmp_path, mnist):
    config = TrainConfig(epochs=2, **TINY)  # 8 steps an epoch
    stop = threading.Event()
    stopped = train(config, tmp_path / "m.pt", data=mnist, stop=stop,
                    callback=lambda e: stop.set() if isinstance(e, StepEvent) and e.step == 11 else None)
    assert stopped.status == "stopped" and len(stopped.history.steps) == 11
    saved = load_checkpoint(tmp_path / "m.pt")
    assert len(saved.history.steps) == 8 and saved.metrics.epoch == 1
    assert saved.metrics.test.to_dict() == pytest.approx(evaluate(saved.model, mnist.test_images).to_dict(), rel=1e-6)
    resumed = train(config, tmp_path / "m.pt", data=mnist, resume=True)
    assert [s.step for s in resumed.history.steps] == list(range(1, 17))


def test_stop_before_any_epoch_writes_nothing(tmp_path, mnist):
    stop = threading.Event()
    result = train(TrainConfig(epochs=1, **TINY), tmp_path / "x.pt", data=mnist, stop=stop,
                   callback=lambda e: stop.set() if isinstance(e, StepEvent) and e.step == 2 else None)
    assert result.status == "stopped" and result.checkpoint is None and result.best is None
    assert len(result.history.steps) == 2 and result.history.epochs == ()
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_or_infinite_loss_stops_with_a_message_and_keeps_the_best_checkpoint(tmp_path, mnist, monkeypatch, bad):
    real_loss, calls = train_mod.vae_loss, []

    def loss_that_turns_bad(*args, **kwargs):
        calls.append(1)
        parts = real_loss(*args, **kwargs)
        return LossParts(parts.total * float(bad), parts.bce, parts.kl) if len(calls) > 10 else parts

    monkeypatch.setattr(train_mod, "vae_loss", loss_that_turns_bad)
    result = train(TrainConfig(epochs=3, **TINY), tmp_path / "n.pt", data=mnist)
    assert result.status == "failed"
    assert f"became {bad} at epoch 2, step 11" in result.message and "epoch 1) is kept" in result.message
    assert load_checkpoint(tmp_path / "n.pt").metrics.epoch == 1


def test_stop_pressed_during_a_checkpoint_write_keeps_that_checkpoint_whole(tmp_path, mnist, monkeypatch):
    stop, real_save = threading.Event(), train_mod.save_checkpoint

    def save_while_stop_is_pressed(*args, **kwargs):
        stop.set()  # the user presses Stop while epoch 1's file is being written
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train_mod, "save_checkpoint", save_while_stop_is_pressed)
    result = train(TrainConfig(epochs=3, **TINY), tmp_path / "s.pt", data=mnist, stop=stop)
    assert result.status == "stopped" and "best checkpoint (epoch 1) is kept" in result.message
    ckpt = load_checkpoint(tmp_path / "s.pt")
    assert ckpt.metrics.epoch == 1 and len(ckpt.history.epochs) == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_invalid_config_is_rejected_with_the_field_name():
    for field, value in [("epochs", 0), ("lr", -1.0), ("batch_size", 0), ("beta", float("nan")), ("schedule", "x"),
                         ("precision", "fp16"), ("iw_samples", 0), ("iw_epochs", 31)]:
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value}).validate()
    for mismatch in (dict(beta=2.0), dict(kl_warmup_epochs=29)):  # the bound is of log p(x): beta 1, no warm-up left
        with pytest.raises(ValueError, match="importance-weighted epochs"):
            TrainConfig(iw_samples=2, iw_epochs=3, **mismatch).validate()
    for pointless in (dict(beta=4.0), dict(kl_warmup_epochs=1.0), dict(iw_samples=2, iw_epochs=3)):
        with pytest.raises(ConfigError, match="an autoencoder has no KL term"):
            TrainConfig(variational=False, **pointless).validate()
    with pytest.raises(ConfigError, match="variational must be True or False"):
        TrainConfig(variational=None).validate()


def test_an_autoencoder_trains_on_its_reconstruction_alone(tmp_path, mnist):
    result = train(TrainConfig(epochs=1, variational=False, **TINY), tmp_path / "ae.pt", data=mnist)
    assert result.status == "finished"
    assert all(s.kl == 0 and s.loss == s.bce for s in result.history.steps)
    assert result.best.test.kl == 0 and result.best.test.loss == result.best.test.bce
    assert result.history.steps[-1].bce < result.history.steps[0].bce
    ckpt = load_checkpoint(result.checkpoint)
    assert not ckpt.config.variational and not ckpt.train_config.variational
    assert evaluate(ckpt.model, mnist.test_images).to_dict() == pytest.approx(ckpt.metrics.test.to_dict(), rel=1e-6)
    # Its film has no log-variances to keep and no KL, but its codes and active units as a VAE's.
    film = ckpt.film
    assert film.logvars is None and not film.kl_per_dim.any() and film.active_units[-1] > 0


def test_an_importance_weighted_fine_tune_trains_the_last_epochs_on_the_bound_and_keeps_them(
        tmp_path, mnist, monkeypatch):
    config = TrainConfig(epochs=3, iw_samples=4, iw_epochs=2, **TINY)  # 8 steps an epoch
    assert [config.iw_samples_at(e) for e in range(3)] == [1, 4, 4]
    assert [TrainConfig(epochs=3).iw_samples_at(e) for e in range(3)] == [1, 1, 1]
    assert config.fine_tune_start == 1 and TrainConfig(epochs=3, iw_epochs=2).fine_tune_start is None
    calls, epochs_done = [], []
    real_iwae_loss, real_evaluate = train_mod.iwae_loss, train_mod.evaluate

    def counting_iwae_loss(model, x, k):
        calls.append((len(epochs_done), k))
        return real_iwae_loss(model, x, k)

    def evaluate_worse_after_epoch_1(model, images, **kw):  # validation's -ELBO cannot judge the bound's epochs
        metrics = real_evaluate(model, images, **kw)
        return replace(metrics, loss=metrics.loss + 100 * len(epochs_done))

    monkeypatch.setattr(train_mod, "iwae_loss", counting_iwae_loss)
    monkeypatch.setattr(train_mod, "evaluate", evaluate_worse_after_epoch_1)
    result = train(config, tmp_path / "iw.pt", data=mnist,
                   callback=lambda e: epochs_done.append(e) if isinstance(e, EpochEvent) else None)
    assert result.status == "finished"
    assert calls == [(1, 4)] * 8 + [(2, 4)] * 8  # every step of the last two epochs, none before
    assert [e.improved for e in epochs_done] == [True, True, True] and result.best.epoch == 3
    # The curves show the objective: the -ELBO, then the bound (with the -ELBO's parts beside it).
    steps = result.history.steps
    assert all(s.loss == pytest.approx(s.bce + s.kl) for s in steps[:8])
    assert not any(s.loss == pytest.approx(s.bce + s.kl) for s in steps[8:])
    assert load_checkpoint(result.checkpoint).train_config == config
    # Its figure shades those epochs in each panel, so that the drop to the bound is not read as the -ELBO's.
    shaded = loss_figure(result.history, fine_tune_from=config.fine_tune_start).layout
    assert [(shape.x0, shape.x1) for shape in shaded.shapes] == [(1, 3)] * 3
    assert "IW bound" in [a.text for a in shaded.annotations]
    assert not loss_figure(result.history).layout.shapes


def test_schedules_warm_up_then_anneal_along_their_shape():
    for schedule in ("linear", "onecycle"):
        config = TrainConfig(lr=1e-2, schedule=schedule)
        lrs = [learning_rate(config, s, 1000) for s in range(1000)]
        assert lrs[0] < lrs[100] < lrs[249] and max(lrs) == pytest.approx(1e-2, rel=0.01)
        assert lrs[-1] < 1e-4
    halfway = 250 + 750 // 2  # half way down from the peak
    assert learning_rate(TrainConfig(lr=1e-2), halfway, 1000) == pytest.approx(0.5e-2, rel=0.01)
    early, late = 300, 900
    cosine, line = TrainConfig(lr=1e-2, schedule="onecycle"), TrainConfig(lr=1e-2, schedule="linear")
    assert learning_rate(cosine, early, 1000) > learning_rate(line, early, 1000)
    assert learning_rate(cosine, late, 1000) < learning_rate(line, late, 1000)
    assert learning_rate(TrainConfig(schedule="constant", lr=3e-3), 500, 1000) == 3e-3


def test_resume_without_its_state_file_says_so(tmp_path, mnist):
    train(TrainConfig(epochs=1, **TINY), tmp_path / "m.pt", data=mnist)
    (tmp_path / "m.resume").unlink()
    with pytest.raises(CheckpointError, match="m.resume\\) is missing"):
        train(TrainConfig(epochs=2, **TINY), tmp_path / "m.pt", data=mnist, resume=True)


def test_a_bf16_step_runs_the_layers_in_bf16_and_keeps_the_loss_and_weights_in_fp32(mnist):
    torch.manual_seed(0)
    model = ConvVAE()
    seen = []
    model.decoder.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = to_float(mnist.train_images[:64])
    parts, updated = train_step(model, make_optimizer(model, TrainConfig()), x, autocast=torch.bfloat16)
    assert updated and seen == [torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in parts) and torch.isfinite(parts.total)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_and_fp32_runs_reach_the_same_loss(tmp_path, mnist):
    losses = {}
    for precision in ("fp32", "bf16"):
        result = train(TrainConfig(epochs=2, precision=precision, **TINY), tmp_path / f"{precision}.pt", data=mnist)
        losses[precision] = result.best.test.loss
        assert result.history.epochs[-1].test.loss < result.history.epochs[0].test.loss
        # The curves are taken in the run's precision; the kept model's file holds fp32 metrics.
        ckpt = load_checkpoint(result.checkpoint)
        fp32 = evaluate(ckpt.model, mnist.test_images)
        assert ckpt.metrics.test == result.best.test
        assert result.best.test.to_dict() == pytest.approx(fp32.to_dict(), rel=1e-6)
        curve = result.history.epochs[result.best.epoch - 1].test.loss
        assert curve == pytest.approx(result.best.test.loss, abs=0.05)
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.01)


def test_a_run_resumes_only_with_its_own_settings_and_a_refusal_names_each_difference(tmp_path, mnist):
    old = dict(TINY, decoder_convs_7x7=0, decoder_convs_14x14=1, output_kernel=1, precision="fp32")
    train(TrainConfig(epochs=1, **old), tmp_path / "old.pt", data=mnist)

    resumed = train(TrainConfig(epochs=2, **old), tmp_path / "old.pt", data=mnist, resume=True)
    assert resumed.status == "finished" and [e.epoch for e in resumed.history.epochs] == [1, 2]
    differences = (r"differs in decoder_convs_14x14 \(it had 1, not 2\), output_kernel \(it had 1, not 3\), "
                   r"precision \(it had 'fp32', not 'auto'\)")
    with pytest.raises(CheckpointError, match=differences):
        train(TrainConfig(epochs=2, **TINY), tmp_path / "old.pt", data=mnist, resume=True)
