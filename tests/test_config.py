"""Every numeric setting's limits (``vae.config.LIMITS``): the library refuses a value past one,
naming it, and never takes a bool for a number; the command line and the app's form read the same."""

import pytest

from harness.apptest import run_app
from vae.config import DECODED_PER_STEP, LIMITS, TrainConfig
from vae.model import MODEL_LIMITS, ConfigError, VAEConfig
from vae.train import main

# Fields whose upper end another field lowers, and the settings under which each reaches its own.
# The settings whose limit another bounds, with others that let them reach it (MNIST has 60,000
# training images; a dataset of one's own may hold up to 100,000).
AT_ITS_LIMIT = {"iw_epochs": {"epochs": LIMITS["epochs"].high}, "train_size": {"val_size": 0, "data": "own-0123abcd"}}


def over(field: str) -> int | float:
    limit = LIMITS[field]
    return limit.high + 1 if limit.integer else limit.high * 2


@pytest.mark.parametrize("field", [name for name in LIMITS if name not in AT_ITS_LIMIT])
def test_a_setting_past_its_limit_is_refused_with_the_limit_named(field):
    limit, kind = LIMITS[field], "an integer" if LIMITS[field].integer else "a number"
    with pytest.raises(ConfigError) as refused:
        TrainConfig(**{field: over(field)}).validate()
    assert str(refused.value) == f"{field} must be {kind} in {limit}, got {over(field)!r}"
    TrainConfig(**{field: limit.high}).validate()


def test_the_limits_another_setting_lowers_say_which():
    with pytest.raises(ConfigError, match=r"^latent_dim must be an integer in \[1, 512\], got 1000000$"):
        TrainConfig(latent_dim=10**6).validate()
    with pytest.raises(ConfigError, match=r"^iw_epochs must be an integer in \[0, 30\] \(at most epochs=30\), got 31$"):
        TrainConfig(iw_epochs=31).validate()
    with pytest.raises(ConfigError) as refused:
        TrainConfig(train_size=59001).validate()  # MNIST's 60,000 training images less 1,000 for validation
    assert str(refused.value) == ("train_size must be an integer in [1, 59000] "
                                  "(the 60000 training images of MNIST less val_size=1000), got 59001")
    for field, others in AT_ITS_LIMIT.items():
        TrainConfig(**{field: LIMITS[field].high, **others}).validate()
        with pytest.raises(ConfigError, match=f"^{field} must be an integer in"):
            TrainConfig(**{field: over(field), **others}).validate()
    # The importance-weighted epochs decode each image iw_samples times: the batch shrinks to match.
    with pytest.raises(ConfigError, match=f"^iw_samples times the batch size must be at most {DECODED_PER_STEP} "):
        TrainConfig(iw_samples=64, iw_epochs=2).validate()  # 64 x 256
    TrainConfig(iw_samples=64, iw_epochs=2, batch_size=DECODED_PER_STEP // 64).validate()
    TrainConfig(iw_samples=64, batch_size=DECODED_PER_STEP).validate()  # no IW epochs: its samples are unused


@pytest.mark.parametrize("field", list(LIMITS))
def test_a_bool_is_never_a_number(field):
    with pytest.raises(ConfigError, match=f"^{field} must be an? (integer|number) in .*, got True$"):
        TrainConfig(**{field: True}).validate()


def test_the_model_config_holds_its_own_limits():
    for field, limit in MODEL_LIMITS.items():
        with pytest.raises(ConfigError, match=rf"^{field} must be an integer in \[{limit.low}, {limit.high}\]"):
            VAEConfig(**{field: limit.high + 1})
        with pytest.raises(ConfigError, match=f"^{field} must be an integer in .*, got False$"):
            VAEConfig(**{field: False})


def test_the_command_line_refuses_a_setting_past_its_limit_with_the_message(capsys, tmp_path):
    assert main(["--latent-dim", "1000000", "--out", str(tmp_path / "big.pt")]) == 2
    assert capsys.readouterr().err == "error: latent_dim must be an integer in [1, 512], got 1000000\n"
    assert not (tmp_path / "big.pt").exists()
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps its lines
    for field, limit in LIMITS.items():
        assert f"--{field.replace('_', '-')} {field.upper()} in {limit}; default:" in shown


def test_the_forms_number_inputs_stop_at_the_limits(run_queue):
    at = run_app("pages/train.py")
    maxima = {box.key.removeprefix("train_"): box.max for box in at.number_input}
    assert maxima == {field: LIMITS[field].high for field in maxima}
    assert set(maxima) == set(LIMITS) - set(MODEL_LIMITS) - {"weight_decay", "kl_warmup_epochs"} | {"latent_dim"}
