"""The Draw, Latent map and Generate pages in real Streamlit (AppTest) with the bundled models.

Browser-only events are injected by widget key: the canvas as {"drawing": {"raw", "data"}} with a
real PNG data URL, a plotly click as {"selection": {"points": [{"customdata": ...}]}}.
"""

import json
import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest
from PIL import Image

from classroom.jobs import SNAPSHOT_KEY_PREFIX
from harness import BUNDLED_DIR
from harness.apptest import CANVAS, canvas_value, click, drawn, image_bytes, image_captions, plotly_rows, run_app, texts
from studio import analysis, resources
from studio.figures import MAP_DRAWING, MAP_GRID, MAP_TEST
from vae import latent
from vae.checkpoint import update_checkpoint

LATENT2D = str(BUNDLED_DIR / "latent2d.pt")
CANVAS_KEY = "draw_canvas_0"
GRID, TEST, DRAWING = MAP_GRID, MAP_TEST, MAP_DRAWING  # the Latent map's point kinds


def posterior_rings(spec: dict) -> dict[str, np.ndarray]:
    """The map's q(z|x) contours by name ("1σ of q(z|x)", ...) as outlines [points, 2]."""
    return {t["name"]: np.column_stack([plotly_rows(t["x"]), plotly_rows(t["y"])])
            for t in spec["data"] if t["name"].endswith("σ of q(z|x)")}


def test_draw_page_shows_a_hint_until_something_is_drawn():
    at = run_app("pages/draw.py")
    assert not at.exception
    assert "Draw a digit on the black canvas" in at.info[0].value
    at.session_state[CANVAS_KEY] = canvas_value(np.zeros((280, 280, 4), np.uint8))  # cleared canvas
    at.run()
    assert not at.exception and not at.error and "Draw a digit" in at.info[0].value


def test_drawing_gives_reconstruction_score_and_neighbours(mnist):
    at = run_app("pages/draw.py")
    at.session_state[CANVAS_KEY] = canvas_value(drawn(mnist, 0))  # test #0 is a 7
    at.run()
    assert not at.exception and not at.info
    captions = image_captions(at)
    assert "What the model sees (28×28)" in captions and "Reconstruction from the mean of q(z|x)" in captions
    test_neighbours = [c for c in captions if " · test #" in c]  # still there, under an expander
    assert len(test_neighbours) == 8 and sum(c.startswith("7") for c in test_neighbours) >= 6
    # The verdict: a vote among the nearest training digits, which are shown with their distances.
    assert at.success and at.success[0].value.startswith("**Looks like a 7:")
    voters = [c for c in captions if c.endswith(" away")]
    assert len(voters) == 8 and sum(c.startswith("7") for c in voters) >= 5
    distances = [float(c.split(" · ")[1].split()[0]) for c in voters]
    assert distances == sorted(distances)
    assert at.metric[0].label == "−ELBO (nats)" and float(at.metric[0].value) > 0
    assert "of the 10,000 test images" in texts(at)
    last = at.session_state[analysis.LAST_DRAWING_KEY]
    assert last["image"].shape == (28, 28) and last["mu"].shape == (32,)


def canvas_opens_with(at) -> list:
    """The strokes the Draw page's canvas is told to open with (its initial drawing)."""
    (canvas,) = [c for c in at.get("bidi_component") if c.proto.component_name == CANVAS]
    return json.loads(canvas.proto.json)["initialDrawing"]["objects"]


def test_a_learner_who_comes_back_to_draw_finds_their_drawing_until_they_clear_it(mnist):
    at = run_app("pages/draw.py")
    drawing = canvas_value(drawn(mnist, 0))
    drawing["drawing"]["raw"]["objects"] = [{"type": "path", "path": [["M", 70, 60], ["L", 210, 60]]}]
    at.session_state[CANVAS_KEY] = drawing
    at.run()
    analysed = image_captions(at)
    assert canvas_opens_with(at) == []

    for elsewhere in ("pages/home.py", "pages/latent_map.py"):  # Streamlit forgets the canvas on another page
        at.switch_page(elsewhere).run()
        at.switch_page("pages/draw.py").run()
        assert not at.exception and not at.info, "no hint to draw: the drawing is there"
        assert canvas_opens_with(at) == drawing["drawing"]["raw"]["objects"]
        assert image_captions(at) == analysed, "and what the model made of it"
    at.segmented_control(key="draw_source").set_value("Upload").run()
    at.segmented_control(key="draw_source").set_value("Draw").run()
    assert canvas_opens_with(at) == drawing["drawing"]["raw"]["objects"] and image_captions(at) == analysed

    next(b for b in at.button if b.label == "Clear").click().run()
    assert canvas_opens_with(at) == [] and "Draw a digit on the black canvas" in at.info[0].value
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/draw.py").run()
    assert canvas_opens_with(at) == [] and "Draw a digit on the black canvas" in at.info[0].value


def test_the_test_sets_scores_and_encodings_are_kept_on_disk_for_the_next_server(tmp_path, monkeypatch):
    """A fresh server's first drawing (and Compare's first maps) read them instead of spending
    seconds of CPU on them again; a running run's epoch is measured in memory only."""
    monkeypatch.setattr(analysis, "test_set_cache", lambda: tmp_path)
    caches = (analysis.test_negative_elbo, analysis.test_encodings)
    for cache in caches:
        cache.clear()
    ckpt, autoencoder = (resources.load(BUNDLED_DIR / name) for name in ("default.pt", "autoencoder.pt"))
    elbo, (mu, logvar) = analysis.test_negative_elbo(ckpt), analysis.test_encodings(ckpt)
    codes, no_logvar = analysis.test_encodings(autoencoder)
    assert no_logvar is None and sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == [
        "elbo", "encodings", "encodings"]
    analysis.test_encodings(replace(ckpt, key=f"{SNAPSHOT_KEY_PREFIX}mine-1-epoch3"))
    assert len(list(tmp_path.iterdir())) == 3, "a run's epoch leaves no file"

    for cache in caches:
        cache.clear()  # the next server
    monkeypatch.setattr(latent, "encode", None)  # not called again
    monkeypatch.setattr(latent, "negative_elbo", None)
    np.testing.assert_array_equal(analysis.test_negative_elbo(ckpt), elbo)
    for (kept_mu, kept_logvar), (want_mu, want_logvar) in (
            (analysis.test_encodings(ckpt), (mu, logvar)), (analysis.test_encodings(autoencoder), (codes, None))):
        np.testing.assert_array_equal(kept_mu, want_mu)
        assert kept_logvar is want_logvar is None or np.array_equal(kept_logvar, want_logvar)


def test_upload_good_and_bad_files(mnist):
    at = run_app("pages/draw.py", draw_source="Upload")
    assert "Upload an image (PNG, JPG" in at.info[0].value
    digit = 255 - mnist.test_images[1].numpy()  # dark ink on white paper
    photo = image_bytes(Image.fromarray(digit).resize((400, 400)), "JPEG")
    at.file_uploader[0].set_value(("two.jpg", photo, "image/jpeg"))
    at.run()
    assert not at.exception and not at.error and at.metric[0].label == "−ELBO (nats)"
    at.file_uploader[0].set_value(("notes.png", b"this is not a picture", "image/png"))
    at.run()
    assert not at.exception and "not an image" in at.error[0].value
    at.file_uploader[0].set_value(("blank.png", image_bytes(Image.new("L", (64, 64), 255)), "image/png"))
    at.run()
    assert not at.exception and "no digit stands out" in at.warning[0].value


def test_map_decodes_a_clicked_point_and_a_grid_location():
    at = run_app("pages/latent_map.py")
    assert not at.exception
    assert at.radio(key="map_method").options == ["PCA", "t-SNE"]  # no raw view of a 32-D latent
    assert "choose **latent2d**" in texts(at)
    key = "latent_map_default_pca_2000_30"  # latent_map_<model>_<method>_<subset>_<perplexity>
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    grid, *digits = spec["data"]
    grid_points, digit_points = plotly_rows(grid["customdata"]), [plotly_rows(t["customdata"]) for t in digits]
    assert len(grid_points) == 25 * 25 and all(kind == GRID for kind, _, _ in grid_points)
    assert [t["name"] for t in digits] == [str(d) for d in range(10)]
    assert sum(len(points) for points in digit_points) == 2000
    _, index, _ = digit_points[3][0]  # a real point of the digit-3 trace: [TEST, index, 3]
    at.session_state[key] = click({"customdata": [TEST, index, 3]})
    at.run()
    assert not at.exception
    assert f"Test #{index}: a 3" in image_captions(at) and "Decoded from its mean" in image_captions(at)
    _, x, y = grid_points[300]
    at.session_state[key] = click({"customdata": [GRID, x, y]})
    at.run()
    assert not at.exception and f"Decoded at ({x:.2f}, {y:.2f})" in image_captions(at)
    assert "PCA is linear" in texts(at)


def test_map_of_a_2d_latent_offers_raw_coordinates_a_manifold_and_the_drawing(mnist):
    image = mnist.test_images[0].numpy() / 255.0
    drawing = {"image": image, "mu": np.zeros(32, np.float32), "logvar": np.zeros(32, np.float32),
               "checkpoint": "another-model.pt"}  # drawn with another model: re-encoded here
    at = run_app("pages/latent_map.py", LATENT2D, **{analysis.LAST_DRAWING_KEY: drawing})
    assert not at.exception
    assert at.radio(key="map_method").value == "raw"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star, target = spec["data"][-2:]
    assert star["name"] == "your drawing" and star["marker"]["symbol"] == "star"
    # Clicks go to a small transparent marker drawn last on the star (see the browser test).
    assert star["hoverinfo"] == "skip" and star["legendgroup"] == target["legendgroup"]
    assert (target["x"], target["y"]) == (star["x"], star["y"]) and target["marker"]["size"] <= 6
    assert plotly_rows(target["customdata"]) == [[DRAWING, 0, 0]]
    # In a raw 2-D latent the rings are q(z|x)'s own: axis-aligned, half-axes 1 and 2 standard deviations.
    (mu,), (logvar,) = latent.encode(resources.load(LATENT2D).model, image.astype(np.float32))
    assert np.allclose([star["x"][0], star["y"][0]], mu, atol=1e-4)
    rings = posterior_rings(spec)
    for sigmas in (1, 2):
        half_axes = np.abs(rings[f"{sigmas}σ of q(z|x)"] - mu).max(axis=0)
        assert np.allclose(half_axes, sigmas * np.exp(logvar / 2), rtol=1e-3)
    assert "1σ and 2σ of q(z|x)" in texts(at)
    assert any(s.value == "Manifold" for s in at.header)
    at.session_state["latent_map_latent2d_raw_2000_30"] = click({"customdata": [GRID, 0.25, -0.5]})
    at.run()
    assert not at.exception and "Decoded at (0.25, -0.50)" in image_captions(at)


def test_map_view_takes_in_a_drawing_far_from_every_test_digit(mnist):
    """A stroke unlike any digit can encode far outside the test digits: the star must stay in view
    (the load bench once clicked a star that Plotly had clipped away)."""
    drawing = {"image": mnist.test_images[0].numpy() / 255.0, "mu": np.full(32, 12.0, np.float32),
               "logvar": np.zeros(32, np.float32),  # unit variance everywhere: circles of radius 1 and 2 under PCA
               "checkpoint": resources.load(resources.default_checkpoint()).key}  # drawn with this model: mu is used
    at = run_app("pages/latent_map.py", **{analysis.LAST_DRAWING_KEY: drawing})
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star = spec["data"][-2]
    assert star["name"] == "your drawing"
    (sx,), (sy,) = star["x"], star["y"]
    digits = [trace for trace in spec["data"] if trace["name"] in list("0123456789")]
    xs = np.concatenate([plotly_rows(t["x"]) for t in digits])
    ys = np.concatenate([plotly_rows(t["y"]) for t in digits])
    assert not (xs.min() <= sx <= xs.max() and ys.min() <= sy <= ys.max())  # a case that needs the fix
    (x0, x1), (y0, y1) = spec["layout"]["xaxis"]["range"], spec["layout"]["yaxis"]["range"]
    assert x0 < sx < x1 and y0 < sy < y1
    # PCA's two directions are orthonormal, so N(mu, I) projects onto the plane as N(star, I).
    for sigmas in (1, 2):
        radii = np.hypot(*(posterior_rings(spec)[f"{sigmas}σ of q(z|x)"] - [sx, sy]).T)
        assert np.allclose(radii, sigmas, rtol=1e-4)
    assert "projected onto the PCA plane" in texts(at)


def test_map_with_tsne_decodes_a_mix_of_neighbours():
    at = run_app("pages/latent_map.py")
    at.radio(key="map_method").set_value("tsne")
    at.select_slider(key="map_subset").set_value(250)
    at.run()
    assert not at.exception and "cannot decode a location" in texts(at)
    assert not at.header  # no manifold without an inverse
    at.session_state["latent_map_default_tsne_250_30"] = click({"customdata": [GRID, 0.0, 0.0]})
    at.run()
    assert not at.exception and "t-SNE has no inverse map" in texts(at)


def test_generate_page_renders_and_reseeds():
    at = run_app("pages/generate.py")
    assert not at.exception
    assert [s.value for s in at.header] == [
        "Samples from the prior, and from where the data is", "A digit of your choice", "How good are the samples?",
        "Interpolation between two test digits", "Latent traversal"]
    dims = at.multiselect[0].value
    assert len(dims) == 8 and len(set(dims)) == 8
    before = len(at.get("image"))
    at.button[0].click().run()  # "New seed"
    assert not at.exception and at.number_input(key="gen_seed").value != 0
    at.multiselect[0].set_value(dims[:2]).run()
    assert len(at.get("image")) == before - 6  # one row per chosen dimension
    at.multiselect[0].set_value([]).run()
    assert "Pick at least one dimension" in at.info[0].value


@pytest.mark.parametrize("page_path", ["pages/draw.py", "pages/latent_map.py", "pages/generate.py"])
def test_pages_render_with_the_2d_model(page_path):
    at = run_app(page_path, LATENT2D)
    assert not at.exception and not at.error


def test_draw_page_says_unsure_for_a_drawing_that_is_no_digit():
    at = run_app("pages/draw.py")
    blob = np.zeros((280, 280, 4), np.uint8)
    blob[40:240, 40:240] = 255  # a filled square: far from every training digit
    at.session_state[CANVAS_KEY] = canvas_value(blob)
    at.run()
    assert not at.exception and not at.success
    assert at.warning and at.warning[0].value.startswith("**Unsure:")


def quality_bars(at) -> dict[str, np.ndarray]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"].split(" · ")[0]: np.asarray(plotly_rows(t["y"])) for t in spec["data"]}


def test_generate_samples_a_chosen_digit_and_judges_every_sampler():
    at = run_app("pages/generate.py")
    assert not at.exception and at.segmented_control(key="gen_digit_mnist").value == 7
    assert "conditioning after the fact" in texts(at) and "crowd into clusters" in texts(at)
    bars = quality_bars(at)
    assert list(bars) == ["prior", "mixture", "digit 7"]
    assert all(len(b) == 10 and b.sum() == pytest.approx(1.0) for b in bars.values())
    assert bars["digit 7"][7] >= 0.8  # the per-digit sampler mostly makes the digit asked for
    assert bars["mixture"].min() > 0.02  # and the mixture makes every digit
    chosen = {m.label: m.value for m in at.metric}["Samples of the 7 recognised as a 7"]
    assert float(chosen.rstrip("%")) / 100 == pytest.approx(bars["digit 7"][7], abs=0.006)

    at.segmented_control(key="gen_digit_mnist").set_value(1).run()
    assert not at.exception and list(quality_bars(at)) == ["prior", "mixture", "digit 1"]
    assert quality_bars(at)["digit 1"][1] >= 0.9


def test_generate_refuses_a_digit_with_too_few_training_examples(checkpoint_dir):
    few = update_checkpoint(shutil.copy(checkpoint_dir / "default.pt", checkpoint_dir / "few.pt"),
                            train_config={**asdict(resources.load(checkpoint_dir / "default.pt").train_config),
                                          "train_size": 300})  # some 30 of each digit, for 32 dimensions
    at = run_app("pages/generate.py", str(few))
    assert not at.exception
    assert any("needs at least 64" in w.value for w in at.warning)
    assert list(quality_bars(at)) == ["prior", "mixture"]  # no bar for a sampler that cannot be fitted
