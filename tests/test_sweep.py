"""The sweep command (classroom/sweep.py): a model per β through the queue, then the rate-distortion table."""

import pytest

from classroom.sweep import main
from vae import load_checkpoint


def test_a_sweep_trains_a_model_per_beta_and_prints_the_table(tmp_path, capsys):
    assert main(["--beta", "1", "4", "--epochs", "1", "--train-size", "512", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Training 2 runs on this server -> {tmp_path}"
    assert out[1].split() == ["run", "beta", "latent", "status", "epoch", "rate", "KL", "distortion", "BCE", "-ELBO"]
    rows = [line.split() for line in out[2:]]
    assert [row[:5] for row in rows] == [["sweep-beta1", "1", "32", "finished", "1"],
                                        ["sweep-beta4", "4", "32", "finished", "1"]]
    kl, bce, loss = (float(v) for v in rows[0][5:])
    assert loss == pytest.approx(kl + bce, abs=0.02)
    assert [load_checkpoint(tmp_path / f"{row[0]}.pt").train_config.beta for row in rows] == [1.0, 4.0]


@pytest.mark.parametrize("argv, expected", [
    (["--beta", "-1"], "error: beta must be a finite number >= 0, got -1.0"),
    (["--beta", "1", "--latent-dim", "0"], "error: latent_dim must be a positive integer, got 0"),
    (["--beta", "1", "1"], "error: each value may be given once."),
    (["--beta", "1", "--name", "my sweep"], "error: The name 'my sweep' makes the run name 'my sweep-beta1'"),
])
def test_bad_arguments_are_refused_with_a_message_before_anything_is_queued(tmp_path, capsys, argv, expected):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(expected)
    assert not (tmp_path / "out").exists()


def test_an_existing_model_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "sweep-beta2.pt").write_bytes(b"a model")
    assert main(["--beta", "1", "2", "--out", str(tmp_path)]) == 2
    assert "sweep-beta2.pt exists; choose another name or folder." in capsys.readouterr().err
    assert not (tmp_path / "sweep-beta1.pt").exists()
