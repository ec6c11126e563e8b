"""Every learner can read what the pages show (WCAG 2.1 AA's text alternatives): each image has alt
text that says what it shows, each chart a sentence under it, and those sentences carry the
numbers the chart was drawn from. The browser suite checks the rest with axe-core, a keyboard and
touch screens (tests/test_browser.py)."""

import numpy as np
import pytest

from harness import BUNDLED_DIR
from harness.apptest import canvas_value, click, drawn, run_app
from studio import words
from studio.figures import MAP_TEST
from vae.checkpoint import load_checkpoint
from vae.explain import explain
from vae.posterior import iw_bounds

DESCRIPTION = ":material/description:"  # how studio.access.chart starts a chart's sentence


def alt_texts(at) -> list[str]:
    """The alt text of every image on the page ("" for none)."""
    return [image.alt for element in at.get("image") for image in element.proto.imgs]


def chart_sentences(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith(DESCRIPTION)]


@pytest.mark.parametrize("script, state", [
    ("pages/home.py", {}),
    ("pages/draw.py", {"draw": True}),
    ("pages/inside.py", {}),
    ("pages/latent_map.py", {"latent_map_default_pca_2000_30": click({"customdata": [MAP_TEST, 3, 0]})}),
    ("pages/board.py", {}),
], ids=lambda v: v.split("/")[-1] if isinstance(v, str) else None)
def test_every_image_has_alt_text_and_every_chart_a_sentence(script, state, mnist):
    # Generate and Compare draw through the same studio.access.chart; axe's image-alt rule checks their
    # images in the browser suite.
    if state.pop("draw", False):
        state = {"draw_canvas_0": canvas_value(drawn(mnist, 0))}
    at = run_app(script)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    alts = alt_texts(at)
    assert all(alt.strip() for alt in alts), f"images without alt text on {script}: {alts}"
    charts = at.get("plotly_chart")
    assert alts or charts, f"{script} shows no image and no chart to check"
    assert len(chart_sentences(at)) == len(charts), f"{len(charts)} charts, sentences: {chart_sentences(at)}"


def test_the_inside_sentences_carry_the_digits_own_numbers(mnist):
    ckpt = load_checkpoint(BUNDLED_DIR / "default.pt")
    e = explain(ckpt, mnist.test_images[0].numpy(), seed=0)
    used = e.kl_per_dim > 0.01
    top = int(np.argmax(e.kl_per_dim))
    kl = words.kl_bars(e.kl_per_dim, used, chosen=top)
    assert kl.startswith(f"Most KL: z{top} {e.kl_per_dim[top]:.2f}")
    assert f"{int((~used).sum())} of {len(used)} dimensions are collapsed" in kl
    worst = np.unravel_index(np.argmax(e.bce_per_pixel), e.bce_per_pixel.shape)
    costs = words.pixel_costs(e.bce_per_pixel)
    assert f"costliest pixel (row {worst[0]}, column {worst[1]})" in costs and f"{e.bce:.1f} nats in all" in costs
    order = np.argsort(-e.kl_per_dim)
    j = int(order[0])
    assert f"z{j} = {e.mu[j]:.2f} + {e.sigma[j]:.2f} × ({e.eps[j]:.2f}) = {e.z[j]:.2f}" in words.reparameterisation(
        e.mu, e.sigma, e.eps, e.z, order)
    bounds = iw_bounds(ckpt.model, e.x, ks=(1, 10))
    said = words.bounds(bounds, bounds[10] - bounds[1], exact=False)
    assert f"K = 1: {bounds[1]:.2f}, K = 10: {bounds[10]:.2f}" in said and "at least" in said


def test_the_loss_curves_and_the_map_in_words(ckpt, mnist):
    last, best = ckpt.history.epochs[-1], min(ckpt.history.epochs, key=lambda r: r.test.loss)
    said = words.loss_history(ckpt.history)
    assert said.startswith(f"After epoch {last.epoch}:") and f"test {last.test.loss:.1f} nats" in said
    assert f"lowest test −ELBO was {best.test.loss:.1f}, at epoch {best.epoch}" in said
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [10.0, 10.0], [11.0, 12.0]])
    said = words.clusters(coords, np.array([0, 0, 1, 1]), ("cat", "dog"))
    assert said == "4 points; each label's centre: cat at (0.5, 0.5); dog at (10.5, 11.0)."
