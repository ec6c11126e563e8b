"""The Inside page (AppTest): one digit through the article's equations with its own numbers, from a
drawing, a test digit or a click on the Latent map; a new ε; the autoencoder; the run training now."""

import json

import numpy as np
import pytest

from harness import BUNDLED_DIR, TINY
from harness.apptest import canvas_value, click, drawn, fill_form, press_queue, progress_of, run_app, texts
from harness.wait import until
from studio import analysis, resources
from studio.figures import GAP_ROW
from vae import load_checkpoint, posterior
from vae.explain import explain

PAGE = "pages/inside.py"
PROBE_KEYS = ("inside_probe_a", "inside_probe_b")  # z on the posterior plane
DEFAULT = load_checkpoint(resources.default_checkpoint())
LATENT2D = load_checkpoint(BUNDLED_DIR / "latent2d.pt")


def latex(at) -> str:
    return " ".join(e.value for e in at.latex)


def z_row(at) -> list:
    """The numbers of the z row of the reparameterisation chart."""
    spec = json.loads(next(c for c in at.get("plotly_chart") if "inside_reparameterisation" in c.proto.id).proto.spec)
    return spec["data"][0]["text"][4]


def bounds_chart(at) -> dict:
    """The figure of the IW bounds on log p(x) and the gap, in "Why variational"."""
    return json.loads(next(c for c in at.get("plotly_chart") if "inside_bounds" in c.proto.id).proto.spec)


def test_a_test_digit_goes_through_every_step_with_its_own_numbers(mnist):
    at = run_app(PAGE)
    assert "No drawing yet" not in texts(at), "without a drawing the page starts on a test digit"
    e = explain(DEFAULT.model, mnist.test_images[0].numpy(), seed=0)
    formulas = latex(at)
    assert f"= {e.bce:.2f}" in formulas and f"= {e.kl:.2f}" in formulas
    assert f"{e.bce:.2f} + {e.kl:.2f} = {e.loss:.2f}" in formulas
    assert [s.value for s in at.header][:6] == ["1 · x, the input", "2 · Encoder → μ and log σ²",
                                                   "3 · Reparameterisation: z = μ + σ·ε",
                                                   "4 · Decoder → x', and the reconstruction loss",
                                                   "5 · KL divergence per dimension", "6 · The loss"]
    assert "15 of 32 dimensions are collapsed" in texts(at)
    code = " ".join(c.value for c in at.code)
    assert "def encode(" in code and "def reparameterize(" in code and "def kl_to_standard_normal(" in code

    # The KL of the chosen dimension, written out: the model's largest first, then one clicked on its bar.
    first = at.session_state["inside_dimension"]
    assert first == int(np.argmax(DEFAULT.film.kl_per_dim[DEFAULT.film.frame_at(DEFAULT.metrics.epoch)]))
    assert f"KL}}_{{{first}}}" in latex(at) and f"= {e.kl_per_dim[first]:.3f}" in latex(at)
    collapsed = int(np.argmin(e.kl_per_dim))
    at.session_state[f"inside_kl_{first}"] = click({"customdata": [collapsed]})
    at.run()
    assert not at.exception, at.exception
    assert f"KL}}_{{{collapsed}}}" in latex(at) and f"= {e.kl_per_dim[collapsed]:.3f}" in latex(at)
    assert "collapsed: its KL is about 0" in texts(at)


def test_the_kl_step_shows_log_sigma2_and_the_articles_form_of_the_kl(mnist):
    at = run_app(PAGE)
    e = explain(DEFAULT.model, mnist.test_images[0].numpy(), seed=0)
    j = at.session_state["inside_dimension"]
    mu, sigma, logvar, kl = (f"{v:.3f}" for v in (e.mu[j], e.sigma[j], e.logvar[j], e.kl_per_dim[j]))
    assert rf"\tfrac{{1}}{{2}}\left(({mu})^2 + {sigma}^2 - 1 - ({logvar})\right)" in latex(at)
    assert rf"= -\tfrac{{1}}{{2}}\left(1 + ({logvar}) - ({mu})^2 - {sigma}^2\right) = {kl}" in latex(at)
    assert f"The encoder outputs log σ² = {logvar} for z{j}" in texts(at)
    assert "the seed article's, −½(1 + log σ² − μ² − σ²)" in texts(at)


def test_the_collapsed_dimensions_are_marked_in_the_dimension_chooser(mnist):
    at = run_app(PAGE)
    kl = explain(DEFAULT.model, mnist.test_images[0].numpy(), seed=0).kl_per_dim
    options = at.selectbox(key="inside_dimension").options
    marked = [o for o in options if o.endswith(" (collapsed)")]
    assert len(options) == 32 and len(marked) == 15, "15 of 32 dimensions are collapsed"
    assert f"z{int(np.argmin(kl))} (collapsed)" in marked and f"z{int(np.argmax(kl))}" in options


def test_another_eps_moves_z_and_its_decoding_but_not_mu(mnist):
    at = run_app(PAGE)
    before = z_row(at)
    pictures = [image.proto.imgs[0].url for image in at.get("image")]
    next(b for b in at.button if b.key == "inside_new_eps").click().run()
    assert not at.exception, at.exception
    assert "ε drawn with seed **1**" in texts(at)
    assert z_row(at) != before
    e0, e1 = (explain(DEFAULT.model, mnist.test_images[0].numpy(), seed=s) for s in (0, 1))
    np.testing.assert_array_equal(e0.mu, e1.mu)
    assert f"{e1.bce:.2f} + {e1.kl:.2f} = {e1.loss:.2f}" in latex(at)
    assert [image.proto.imgs[0].url for image in at.get("image")] != pictures


def test_the_inside_elbo_of_a_drawing_equals_the_draw_pages(mnist):
    at = run_app("pages/draw.py")
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 3))
    at.run()
    assert not at.exception, at.exception
    draw_elbo = at.metric[0].value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.segmented_control(key="inside_source").value == "drawing"
    image = at.session_state[analysis.LAST_DRAWING_KEY]["image"]
    e = explain(DEFAULT.model, image, seed=0)
    assert f"{e.loss:.1f}" == draw_elbo
    assert f"= {e.loss:.2f}" in latex(at)


def test_a_digit_clicked_on_the_latent_map_is_offered(mnist):
    at = run_app(PAGE, **{analysis.MAP_PICK_KEY: 42})
    at.segmented_control(key="inside_source").set_value("map").run()
    assert not at.exception, at.exception
    assert any("Test #42" in c for image in at.get("image") for c in image.captions)
    e = explain(DEFAULT.model, mnist.test_images[42].numpy(), seed=0)
    assert f"= {e.loss:.2f}" in latex(at)


def test_the_autoencoder_says_what_it_lacks():
    path = BUNDLED_DIR / "autoencoder.pt"
    if not path.is_file():
        pytest.fail("checkpoints/autoencoder.pt is bundled")
    at = run_app(PAGE, str(path))
    words = texts(at)
    assert "z = μ" in words and "no σ" in words and "no KL term" in words
    assert "Draw another ε" not in [b.label for b in at.button]
    assert "loss} = \\mathrm{BCE}" in latex(at)


def test_the_run_training_now_can_be_watched_epoch_by_epoch(checkpoint_dir, run_queue):
    at = press_queue(fill_form(run_app("pages/train.py"), name="watched", **{**TINY, "epochs": 200}))
    run_id = run_queue.runs()[0].id
    until(lambda: run_queue.snapshot(run_id).weights is not None, timeout=120)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.toggle(key="inside_live").set_value(True).run()
    assert not at.exception, at.exception
    shown = next(c.value for c in at.caption if c.value.startswith("Model: "))
    assert "the run watched after epoch" in shown
    assert "the page updates when the next one ends" in texts(at)
    assert "ranks among the test digits is shown for saved models only" in texts(at)

    run_queue.stop(run_id)
    assert run_queue.wait(run_id, timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert "The run watched has ended and its model is saved as **watched**" in texts(at)
    next(b for b in at.button if b.label == "Use it as the active model").click().run()
    assert not at.exception, at.exception
    assert at.session_state[resources.ACTIVE_KEY] == str(checkpoint_dir / "watched.pt")
    assert "Model: **watched**" in texts(at)


def test_beta4_shows_its_own_beta():
    at = run_app(PAGE, str(BUNDLED_DIR / "beta4.pt"))
    assert not at.exception, at.exception
    assert r"\beta\,\mathrm{KL} = " in latex(at) and r" + 4 \times " in latex(at)
    assert "trained with β = 4" in texts(at)


def test_why_variational_on_the_2d_model_shows_the_exact_gap_and_moves_z(mnist):
    at = run_app(PAGE, str(BUNDLED_DIR / "latent2d.pt"))
    assert not at.exception, at.exception
    assert "7 · Why variational: q(z|x) and the true posterior" in [s.value for s in at.header]
    grid = posterior.posterior_grid(LATENT2D.model, mnist.test_images[0].numpy())
    identity = latex(at)
    assert f"{{{grid.elbo:.2f}}}_{{\\mathrm{{ELBO}}}}" in identity
    assert f"{{{grid.log_px:.2f}}}_{{\\log p(x)}}" in identity
    assert f"{{{grid.log_px - grid.elbo:.2f}}}_" in identity
    assert "exact up to the grid" in texts(at)
    # The gap has a bar of its own, from −log p(x) to −ELBO, with its value.
    chart = bounds_chart(at)
    (bar,) = [t for t in chart["data"] if t["y"] == [GAP_ROW]]
    assert bar["base"] == [pytest.approx(-grid.log_px, abs=1e-6)]
    assert bar["x"] == [pytest.approx(grid.log_px - grid.elbo, abs=1e-6)]
    assert f"gap = {grid.log_px - grid.elbo:.2f} nats" in [a["text"] for a in chart["layout"]["annotations"]]
    # A click on the plane moves z there: the number inputs, the log-densities and the decoding follow.
    target = np.round(grid.q_mean + np.array([0.05, -0.03]), 3)  # the inputs keep 3 decimals
    before = table(at)
    at.session_state["inside_plane_0"] = click({"customdata": target.tolist()})
    at.run()
    assert not at.exception, at.exception
    assert [at.number_input(key=k).value for k in PROBE_KEYS] == pytest.approx(target, abs=1e-3)
    probe = posterior.probe(LATENT2D.model, mnist.test_images[0].numpy(), target.astype(np.float32))
    assert f"| {probe.log_q:.2f} |" in table(at) and f"| {probe.log_likelihood:.2f} |" in table(at)
    assert table(at) != before
    assert progress_of(at).events[("posterior_z", None)] == 1
    # The keyboard path: a typed coordinate does the same.
    at.number_input(key=PROBE_KEYS[1]).set_value(round(float(grid.q_mean[1]), 3)).run()
    assert not at.exception, at.exception
    # q's σ scaled to 0: one point, an infinite KL.
    at.slider(key="inside_sigma_scale").set_value(0.0).run()
    assert "**infinite**" in texts(at) and "autoencoder's case" in texts(at)


def test_why_variational_on_a_32d_model_is_a_labelled_slice(mnist):
    at = run_app(PAGE)
    assert not at.exception, at.exception
    assert "is a **slice**" in texts(at) and "importance sampling with K = 1,000" in texts(at)
    # The gap's bar, labelled as the lower bound it is: log p(x) here is the K = 1000 bound.
    bounds = posterior.iw_bounds(DEFAULT.model, mnist.test_images[0].numpy())
    chart = bounds_chart(at)
    assert [t["x"] for t in chart["data"] if t["y"] == [GAP_ROW]] == [[pytest.approx(bounds[1000] - bounds[1])]]
    assert f"gap ≥ {bounds[1000] - bounds[1]:.2f} nats, from K = 1000" in [a["text"] for a in
                                                                          chart["layout"]["annotations"]]


def table(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("| at this z"))
