"""The training film in the app (AppTest): the Latent map's Training view, the Train page's live
film and player, the active-unit count on Home and in the sidebar, and films that cannot be shown."""

import json

import numpy as np
import torch

from harness import BUNDLED_DIR, TINY
from harness.apptest import click, fill_form, plotly_rows, press_queue, run_app, texts
from harness.wait import until
from studio import analysis, resources
from vae import load_checkpoint
from vae.checkpoint import read_checkpoint
from vae.film import film_layout, neighbour_agreement
from vae.settings import configure

DEFAULT = load_checkpoint(resources.default_checkpoint())


def film_chart(at):
    charts = [c for c in at.get("plotly_chart") if json.loads(c.proto.spec).get("frames")]
    assert len(charts) == 1, "one animated film"
    return json.loads(charts[0].proto.spec)


def test_the_training_view_plays_the_active_models_film_and_steps_and_jumps_through_it():
    film = DEFAULT.film
    at = run_app("pages/latent_map.py", map_view="film")
    assert not at.exception, at.exception
    spec = film_chart(at)
    assert len(spec["frames"]) == film.frames
    slider = spec["layout"]["sliders"][0]
    assert [s["label"] for s in slider["steps"]][:6] == ["0", "1/16", "1/8", "1/4", "1/2", "1"]
    assert slider["active"] == 0, "the player opens before training, so Play shows it all"
    labels = [b["label"] for b in spec["layout"]["updatemenus"][0]["buttons"]]
    assert labels == ["▶ Play", "❚❚ Pause", "⟲ From the start", "Slow"]
    active = analysis.active_units(DEFAULT)
    assert f"{active} of {film.latent_dim} light up" in texts(at)
    assert "posterior collapse" in texts(at)

    at.session_state["map_film_chart_0"] = click({"customdata": [3]})  # a heatmap cell
    at.run()
    assert not at.exception
    assert film_chart(at)["layout"]["sliders"][0]["active"] == 3
    assert "(frame 4 of" in texts(at)
    next(b for b in at.button if b.key == "map_film_back").click().run()
    assert film_chart(at)["layout"]["sliders"][0]["active"] == 2
    assert spec["data"][1]["text"] != film_chart(at)["data"][1]["text"], "the caption names the frame"


def test_the_films_loss_curve_shows_the_fall_in_epoch_one_on_the_heatmaps_frames():
    """The curve once started at epoch 7: its axis left out the first tenth of training, and with it
    the fall from the untrained model's ~550 nats that the film's first frames show."""
    film = DEFAULT.film
    spec = film_chart(run_app("pages/latent_map.py", map_view="film"))
    curves = {trace["name"]: trace for trace in spec["data"] if trace.get("name") in ("training batches", "test −ELBO")}
    training, test = ({axis: np.asarray(plotly_rows(curves[name][axis]), dtype=float) for axis in ("x", "y")}
                      for name in ("training batches", "test −ELBO"))
    axis = spec["layout"]["yaxis" + curves["test −ELBO"]["yaxis"].removeprefix("y")]
    low, high = 10.0 ** np.asarray(axis["range"])
    assert axis["type"] == "log" and low < test["y"].min() and high > training["y"].max() > 500, "all of it shows"
    first_test = DEFAULT.history.epochs[0].test.loss
    assert test["y"][0] == first_test and test["x"][0] == film.frame_at(1), "epoch 1's test -ELBO, in its column"
    assert training["x"].min() < 1 and training["x"].max() <= film.frame_at(1), "the batches before it, frame by frame"
    assert training["y"][0] > 500 > 250 > training["y"][-1] > first_test * 0.9, "the fall inside epoch 1"
    heatmap, curve = (spec["layout"]["xaxis" + trace["xaxis"].removeprefix("x")] for trace in
                      (next(t for t in spec["data"] if t.get("name") == "heatmap columns"), curves["test −ELBO"]))
    assert heatmap["range"] == curve["range"] and heatmap["tickvals"] == curve["tickvals"], "one column per frame"


def test_the_film_opens_on_its_t_sne_clusters_and_its_captions_say_what_each_view_shows():
    film = DEFAULT.film
    in_latent = neighbour_agreement(film.means, film.labels)
    at = run_app("pages/latent_map.py", map_view="film")
    assert not at.exception, at.exception
    assert at.radio(key="map_film_layout").value == "tsne", "the bundled default's t-SNE map is in its file"
    spec = film_chart(at)
    assert "t-SNE, aligned" in json.dumps(spec["layout"]["annotations"], ensure_ascii=False)
    np.testing.assert_allclose(spec["frames"][-1]["data"][0]["x"], np.round(film.tsne[-1, :, 0], 4), atol=1e-4)
    on_tsne = neighbour_agreement(film.tsne, film.labels)
    # Every frame's caption quotes its own numbers: in the 32-D latent and on the map shown.
    for i in (0, 5, film.frames - 1):
        assert f"same-digit neighbours:<br>{in_latent[i]:.0%} in 32-D, {on_tsne[i]:.0%} here" in \
            spec["frames"][i]["data"][1]["text"][0]
    assert "watch the colours pull apart" in texts(at)

    at.radio(key="map_film_layout").set_value("pca").run()
    assert not at.exception
    spec = film_chart(at)
    on_pca = neighbour_agreement(film_layout(film, "pca"), film.labels)
    assert f"{in_latent[-1]:.0%} in 32-D, {on_pca[-1]:.0%} here" in spec["frames"][-1]["data"][1]["text"][0]
    note = texts(at)
    assert "PCA is the honest linear view" in note and "watch the colours pull apart" not in note
    kept = film.frame_at(DEFAULT.metrics.epoch)
    assert f"{in_latent[kept]:.0%} of the digits' nearest neighbours in 32-D share their label, " \
           f"{on_pca[kept]:.0%} on this map" in note


def test_a_film_without_a_t_sne_map_makes_one_on_request(checkpoint_dir, monkeypatch):
    """A film whose t-SNE map is neither in its file nor on disk opens in PCA; choosing t-SNE
    makes the map (then kept on disk) and shows it."""
    payload = read_checkpoint(checkpoint_dir / "default.pt")
    film = {k: v[-3:] if k in ("epochs", "means", "kl_per_dim", "active_units", "prior_samples") else v
            for k, v in payload["film"].items() if k != "tsne"}
    torch.save({**payload, "film": film, "history": {"steps": [], "epochs": []}}, checkpoint_dir / "short.pt")
    configure(data_dir=checkpoint_dir / "data")  # no t-SNE map kept from before
    at = run_app("pages/latent_map.py", str(checkpoint_dir / "short.pt"), map_view="film")
    assert not at.exception, at.exception
    assert at.radio(key="map_film_layout").value == "pca"
    at.radio(key="map_film_layout").set_value("tsne").run()
    assert not at.exception, at.exception
    assert "t-SNE, aligned" in json.dumps(film_chart(at)["layout"]["annotations"], ensure_ascii=False)
    assert list((checkpoint_dir / "data" / "tsne").glob("film-tsne-*.npz")), "kept on disk for the next visit"


def test_a_2d_models_film_plays_its_manifold_alongside():
    at = run_app("pages/latent_map.py", str(BUNDLED_DIR / "latent2d.pt"), map_view="film")
    assert not at.exception, at.exception
    spec = film_chart(at)
    # The KL heatmap, the prior samples and the manifold, in every frame; the manifold changes.
    assert all(len(frame["layout"]["images"]) == 3 for frame in spec["frames"])
    assert spec["frames"][0]["layout"]["images"][2]["source"] != spec["frames"][-1]["layout"]["images"][2]["source"]
    assert "Grid over [-3, 3]²" in json.dumps(spec["layout"]["annotations"], ensure_ascii=False)


def test_a_model_without_a_film_or_with_a_damaged_one_says_so(checkpoint_dir):
    payload = read_checkpoint(checkpoint_dir / "default.pt")
    torch.save({k: v for k, v in payload.items() if k != "film"}, checkpoint_dir / "nofilm.pt")
    torch.save({**payload, "film": {**payload["film"], "means": payload["film"]["means"][:2]}},
               checkpoint_dir / "damaged.pt")
    at = run_app("pages/latent_map.py", str(checkpoint_dir / "nofilm.pt"), map_view="film")
    assert not at.exception and "has no training film" in at.info[0].value
    at.sidebar.selectbox(key=resources.ACTIVE_KEY).set_value(str(checkpoint_dir / "damaged.pt")).run()
    assert not at.exception
    assert "film cannot be shown: its film is damaged" in at.warning[0].value
    assert "The model itself is fine" in at.warning[0].value


def test_home_and_the_sidebar_say_how_many_dimensions_the_model_uses():
    at = run_app()
    active = analysis.active_units(DEFAULT)
    assert 0 < active < DEFAULT.config.latent_dim
    metric = next(m for m in at.metric if m.label == "Active dimensions")
    assert metric.value == f"{active} of {DEFAULT.config.latent_dim}"
    assert any(f"uses **{active} of {DEFAULT.config.latent_dim}**" in c.value for c in at.sidebar.caption)
    next(b for b in at.button if b.key == "home_film").click().run()
    assert not at.exception and at.session_state["map_view"] == "film"


def test_the_train_page_shows_the_film_live_and_replays_it_when_the_run_ends(checkpoint_dir, run_queue):
    at = press_queue(fill_form(run_app("pages/train.py"), name="filmed", **{**TINY, "epochs": 2}))
    run_id = run_queue.runs()[0].id
    until(lambda: run_queue.snapshot(run_id).film is not None and run_queue.snapshot(run_id).running)
    at.run()
    assert not at.exception, at.exception
    if run_queue.snapshot(run_id).running:  # a tiny run can end between the two lines above
        assert next(m for m in at.metric if m.label == "Active dimensions")
        live = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("train_film_live")
                or "KL per dimension" in c.proto.spec]
        assert live and not live[-1].get("frames"), "the newest frame, not yet a film to play"
    assert run_queue.wait(run_id, timeout=120)
    at.run()
    assert not at.exception, at.exception
    spec = film_chart(at)
    assert len(spec["frames"]) == load_checkpoint(checkpoint_dir / "filmed.pt").film.frames

