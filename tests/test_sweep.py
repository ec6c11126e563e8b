"""The sweep command (classroom/sweep.py): a model per β through the queue, then the rate-distortion table."""

import pytest

from classroom.sweep import main
from vae import load_checkpoint

NAME_RULE = "A run's name may use only letters, digits, '-' and '_' (1 to 64 characters)"


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
    (["--beta", "-1"], "error: beta must be a number in [0, 100], got -1.0"),
    (["--beta", "1", "--latent-dim", "0"], "error: latent_dim must be an integer in [1, 512], got 0"),
    (["--beta", "1", "1"], "error: each value may be given once."),
    (["--beta", "1", "--name", "my sweep"], f"error: {NAME_RULE}, got 'my sweep'."),
    (["--beta", "1", "--name", ""], f"error: {NAME_RULE}, got ''."),  # not a model named -beta1.pt
    (["--beta", "0.5", "--name", "a/b.c"], f"error: {NAME_RULE}, got 'a/b.c'."),  # quoted as typed
    (["--beta", "0.25", "--name", "x" * 60], f"error: The name '{'x' * 60}' makes the run name '{'x' * 60}-beta0p25', "
                                             "longer than a run's name may be (64 characters)"),
])
def test_bad_arguments_are_refused_with_a_message_before_anything_is_queued(tmp_path, capsys, argv, expected):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(expected)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_cannot_hold_the_queue_is_a_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "file").write_text("a file where the checkpoint folder should be")  # root writes anywhere else
    assert main(["--beta", "1", "--out", str(tmp_path / "file" / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: The queue of runs cannot be kept in {tmp_path / 'file' / 'out'} (")
    assert "or a sweep's --out" in err and "Traceback" not in err


def test_an_existing_model_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "sweep-beta2.pt").write_bytes(b"a model")
    assert main(["--beta", "1", "2", "--out", str(tmp_path)]) == 2
    assert "sweep-beta2.pt exists; choose another name or folder." in capsys.readouterr().err
    assert not (tmp_path / "sweep-beta1.pt").exists()
