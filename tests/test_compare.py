"""Two models side by side: the table, the curves, the films' clock and the remembered -log p(x)
(vae/compare.py), and the Compare page in real Streamlit (AppTest) with the bundled models."""

import json
import shutil

import numpy as np
import pytest

import vae.metrics
from harness import BUNDLED_DIR
from harness.apptest import click, image_captions, plotly_rows, run_app, texts
from studio import resources
from vae import compare, load_checkpoint
from vae.film import Film

TUTORIAL, DEFAULT, BETA4, BETA1 = (BUNDLED_DIR / f"{name}.pt" for name in ("tutorial", "default", "beta4", "beta1"))


def rows_of(table):
    return {r.label: r for r in table}


def test_the_table_shows_each_card_and_their_difference():
    a, b = load_checkpoint(TUTORIAL), load_checkpoint(DEFAULT)
    rows = rows_of(compare.table(compare.card(a), compare.card(b)))
    assert rows["architecture"].a == "tutorial" and rows["architecture"].b == "conv"
    assert rows["latent size"].a == "256" and rows["latent size"].b == "32" and rows["latent size"].difference == "-224"
    assert rows["test −ELBO"].a == f"{a.metrics.test.loss:.2f}"
    assert rows["test −ELBO"].difference == f"{b.metrics.test.loss - a.metrics.test.loss:+.2f}"
    assert rows["−log p(x), IW K=100"].b == f"{b.metrics.test_iw.nll:.2f}"
    assert rows["parameters"].a == f"{sum(p.numel() for p in a.model.parameters()):,}"
    assert rows["active units"].b == str(int(b.film.active_units[-1]))
    assert "bf16" in rows["trained on"].b and "fp32" in rows["trained on"].a
    same = rows_of(compare.table(compare.card(b), compare.card(b)))
    assert same["test −ELBO"].difference == "+0.00" and same["architecture"].difference == ""


def test_the_beta_pair_differs_in_beta_alone_and_says_so():
    beta1, beta4 = load_checkpoint(BETA1), load_checkpoint(BETA4)
    assert compare.differing_settings(beta1, beta4) == {"β": (1.0, 4.0)}
    sentence = compare.settings_sentence(compare.differing_settings(beta1, beta4))
    assert sentence.startswith("Only β differs (1 against 4)")
    many = compare.differing_settings(load_checkpoint(TUTORIAL), load_checkpoint(DEFAULT))
    assert many["latent size"] == (256, 32) and many["learning rate"] == (0.001, 0.007) and "β" not in many
    assert compare.settings_sentence(many).startswith(f"{len(many)} training settings differ: architecture")
    assert compare.settings_sentence({}) == "The two models were trained with the same settings."


def test_the_bundled_tutorial_model_is_the_articles_recipe_and_its_card_matches_vae_eval(mnist, capsys):
    ckpt = load_checkpoint(TUTORIAL)
    config = ckpt.train_config
    assert (config.arch, config.latent_dim, config.epochs, config.batch_size, config.lr,
            config.precision) == ("tutorial", 256, 10, 128, 1e-3, "fp32")
    assert TUTORIAL.stat().st_size <= 45 * 2**20
    from vae.eval import main

    assert main([str(TUTORIAL)]) == 0
    printed = capsys.readouterr().out
    assert f"test -ELBO  {ckpt.metrics.test.loss:8.2f} nats" in printed
    assert load_checkpoint(BETA4).train_config.beta == 4


def test_the_films_share_one_clock():
    def film(epochs):
        n = len(epochs)
        return Film(np.array(epochs, dtype=float), np.arange(3), np.arange(3), np.zeros((n, 3, 2), np.float16), None,
                    np.zeros((n, 2)), np.zeros(n, int), np.zeros((n, 16, 28, 28)), None)

    epochs, a, b = compare.lockstep(film([0, 0.5, 1, 2, 3]), film([0, 0.25, 1, 2]))
    assert epochs.tolist() == [0, 0.25, 0.5, 1, 2, 3]
    assert a.tolist() == [0, 0, 1, 2, 3, 4] and b.tolist() == [0, 1, 1, 2, 3, 3]  # B stays on its last frame


def test_the_curve_against_time_adds_up_the_epochs():
    ckpt = load_checkpoint(DEFAULT)
    epochs, seconds, loss = compare.elbo_curve(ckpt.history)
    assert epochs.tolist() == list(range(1, len(epochs) + 1))
    assert seconds[-1] == pytest.approx(sum(r.seconds for r in ckpt.history.epochs))
    assert loss[-1] == ckpt.history.epochs[-1].test.loss


def test_a_measured_log_likelihood_is_kept_per_model_file_and_a_damaged_entry_is_redone(mnist, tmp_path, monkeypatch):
    ckpt = load_checkpoint(DEFAULT)
    images = mnist.test_images[:40]
    first = compare.cached_iw_nll(ckpt, images, tmp_path, k=4)
    assert first == pytest.approx(vae.metrics.importance_weighted_nll(ckpt.model, images, k=4, batch_size=5000))
    monkeypatch.setattr(compare, "importance_weighted_nll", lambda *a, **k: pytest.fail("recomputed"))
    assert compare.cached_iw_nll(ckpt, images, tmp_path, k=4) == first
    (entry,) = tmp_path.glob("iw-*.json")
    entry.write_text("{not json")
    monkeypatch.undo()
    assert compare.cached_iw_nll(ckpt, images, tmp_path, k=4) == pytest.approx(first)
    assert json.loads(entry.read_text())["nll"] == pytest.approx(first)
    other = load_checkpoint(BUNDLED_DIR / "latent2d.pt")  # another file: its own entry, never this one
    assert compare.cached_iw_nll(other, images, tmp_path, k=4) != pytest.approx(first)


@pytest.fixture
def compare_dir(checkpoint_dir):
    for path in (TUTORIAL, BETA4):
        shutil.copy(path, checkpoint_dir / path.name)
    return checkpoint_dir


def test_the_page_compares_the_articles_model_with_the_default_by_default(compare_dir):
    at = run_app("pages/compare.py")
    assert not at.exception, at.exception
    assert at.selectbox(key="compare_a").value == str(compare_dir / "tutorial.pt")
    assert at.selectbox(key="compare_b").value == str(compare_dir / "default.pt")
    table = next(m.value for m in at.markdown if m.value.startswith("| Measure | tutorial | default |"))
    a, b = load_checkpoint(compare_dir / "tutorial.pt"), load_checkpoint(compare_dir / "default.pt")
    assert f"| test −ELBO | {a.metrics.test.loss:.2f} | {b.metrics.test.loss:.2f} |" in table
    assert any(c.startswith("tutorial: −ELBO") for c in image_captions(at))
    assert any(c.startswith("default: 16 prior samples") for c in image_captions(at))
    assert at.get("plotly_chart"), "curves, maps and the films"
    assert any(m.value.startswith("10 training settings differ") for m in at.markdown)
    at.selectbox(key="compare_b").set_value(str(compare_dir / "beta4.pt")).run()
    assert not at.exception and at.selectbox(key="compare_a").value == str(compare_dir / "tutorial.pt")


def test_clicking_a_digit_on_one_map_marks_it_on_both_and_shows_both_decodings(compare_dir):
    at = run_app("pages/compare.py")
    left = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if '"name":"9"' in c.proto.spec)
    nine = next(t for t in left["data"] if t["name"] == "9")
    index = int(plotly_rows(nine["customdata"])[0][0])  # a 9 on the map
    at.session_state["compare_map_a_None"] = click({"customdata": [index]})
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["compare_selected"] == index
    rings = [t for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"] if t.get("name") == "chosen"]
    assert len(rings) == 2, "the ring on both maps"
    captions = image_captions(at)
    assert f"Test #{index}: a 9" in captions
    assert "tutorial decodes its mean" in captions and "default decodes its mean" in captions


def test_the_page_says_the_beta_pair_differs_in_beta_alone(compare_dir):
    shutil.copy(BETA1, compare_dir / BETA1.name)
    at = run_app("pages/compare.py", compare_a=str(compare_dir / "beta1.pt"), compare_b=str(compare_dir / "beta4.pt"))
    table = next(m.value for m in at.markdown if m.value.startswith("| Measure | beta1 | beta4 |"))
    assert "| β | 1 | 4 | +3 |" in table, "the card table shows the one setting apart"
    assert any(m.value.startswith("Only β differs (1 against 4)") for m in at.markdown)


def test_the_same_model_twice_and_a_broken_file(compare_dir):
    (compare_dir / "broken.pt").write_bytes(b"not a checkpoint")
    at = run_app("pages/compare.py", compare_a=str(compare_dir / "default.pt"))
    assert not at.exception and "Both sides show the same model" in texts(at)
    at.selectbox(key="compare_a").set_value(str(compare_dir / "broken.pt")).run()
    assert not at.exception
    assert "This model cannot be compared: broken.pt" in at.error[0].value
    assert "Comparing needs two models" in at.warning[0].value
    assert at.sidebar.selectbox(key=resources.ACTIVE_KEY).value == str(compare_dir / "default.pt")
