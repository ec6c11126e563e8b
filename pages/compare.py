"""Compare: two models side by side on the same test images, samples, maps and films; two models
of different datasets, their cards alone."""

from pathlib import Path

import streamlit as st

from studio import access, analysis, films, learner, resources, runs, views, words
from studio.figures import compare_curves_figure
from vae import compare, latent
from vae.checkpoint import Checkpoint, CheckpointError
from vae.images import make_grid, picture

SIDES = views.SIDES
CHOSEN_KEY = "compare_input_chosen"  # session_state: set when the learner chose an input or seed for both models


def input_chosen() -> None:
    st.session_state[CHOSEN_KEY] = True


def default_pick(side: str, options: list[str]) -> str:
    """The seed article's model on the left, the default on the right, where they exist."""
    wanted = dict(zip(SIDES, analysis.compare_pair()))[side]
    return str(wanted) if str(wanted) in options else options[0]


def model_label(path: str, made_by: dict[str, str]) -> str:
    """A model as the picker names it: with who queued the run that made it, if one did."""
    name = Path(path).stem
    return f"{name} · {made_by[name]}" if name in made_by else name


def pick(side: str, column, options: list[str]) -> Checkpoint | None:
    """The model chosen on one side, or None after saying on that side why it cannot be used."""
    key = f"compare_{side}"
    if st.session_state.get(key) not in options:
        st.session_state[key] = default_pick(side, options)
    made_by = runs.made_by()
    with column:
        path = st.selectbox(f"Model {side.upper()}", options, key=key, format_func=lambda p: model_label(p, made_by))
        try:
            return resources.load(path)
        except CheckpointError as e:
            st.error(f"This model cannot be compared: {e}", icon=":material/error:")
            return None


def iw_estimate(ckpt: Checkpoint, column) -> float | None:
    """-log p(x) of a card that lacks it: measured on request (with a progress bar) and kept on disk."""
    stored = ckpt.metrics.test_iw
    if (stored is not None and stored.k == compare.IW_SAMPLES) or not ckpt.config.variational:
        return None  # stored, or an autoencoder's, which has no q(z|x) to weigh samples with
    cached = st.session_state.get(f"compare_iw_{ckpt.key}")
    if cached is not None:
        return cached
    name = ckpt.name
    if column.button(f"Estimate −log p(x) of {name}", key=f"compare_iw_{name}",
                     icon=":material/calculate:", help=f"{compare.IW_SAMPLES} importance samples for each of the "
                     f"{ckpt.dataset.test_count:,} test images: a minute or more on a CPU, once per model file."):
        bar = column.progress(0.0, text="Estimating −log p(x)…")
        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"{done:,} of {total:,} test images")

        test_images = resources.data_of(ckpt).test_images.to(resources.device())
        nll = compare.cached_iw_nll(ckpt, test_images, analysis.iw_cache(),
                                    progress=progress)
        bar.empty()
        st.session_state[f"compare_iw_{ckpt.key}"] = nll
        return nll
    return None


def show_table(checkpoints: dict, columns) -> None:
    cards = [compare.card(ckpt, iw_estimate(ckpt, column)) for ckpt, column in zip(checkpoints.values(), columns)]
    (name_a, name_b) = checkpoints
    lines = [f"| Measure | {name_a} | {name_b} | B − A |", "| --- | ---: | ---: | ---: |"]  # no empty header cell
    lines += [f"| {r.label} | {r.a} | {r.b} | {r.difference} |" for r in compare.table(*cards)]
    st.markdown("\n".join(lines))
    st.markdown(compare.settings_sentence(compare.differing_settings(*checkpoints.values())))


def show_curves(checkpoints: dict) -> None:
    axis = st.segmented_control("x-axis", ["epoch", "time"], default="epoch", key="compare_x",
                                format_func={"epoch": "By epoch", "time": "By training time"}.get) or "epoch"
    curves = {name if m.config.variational else f"{name} (BCE: no KL)": compare.elbo_curve(m.history)
              for name, m in checkpoints.items()}
    access.chart(compare_curves_figure(curves, axis), words.compared_curves(curves), key="compare_curves")
    st.caption("Training time is each model's own (its card says on which machine): quality against time is the "
               "fair comparison of a slow model and a fast one."
               + ("" if all(m.config.variational for m in checkpoints.values()) else " An autoencoder's curve is its "
                  "reconstruction loss alone, below any VAE's −ELBO, which also pays for its KL."))


def show_one_input(checkpoints: dict) -> None:
    drawing = analysis.last_drawing(next(iter(checkpoints.values())))  # both models are of one dataset
    sources = (["drawing"] if drawing is not None else []) + ["test"]
    left, right = st.columns([2, 3])
    source = left.radio("Input", sources, horizontal=True, key="compare_source", on_change=input_chosen,
                        format_func={"drawing": "Your last drawing", "test": "A test image"}.get)
    test = resources.data_of(next(iter(checkpoints.values())))
    if source == "test":
        index = int(right.number_input("Test image #", 0, len(test.test_images) - 1, 0, key="compare_index",
                                       on_change=input_chosen))
        image = test.test_images[index].numpy() / 255.0
    else:
        image = drawing["image"]
    columns = st.columns(1 + len(checkpoints))
    columns[0].image(picture(image, 4), caption="Input",
                     alt="The input: " + (f"test image #{index}" if source == "test" else "your last drawing"))
    for column, (name, ckpt) in zip(columns[1:], checkpoints.items()):
        mu, _ = latent.encode(ckpt.model, image[None])
        nelbo = latent.negative_elbo(ckpt.model, image[None])[0]
        score = f"−ELBO {nelbo:.1f} nats" if ckpt.config.variational else f"BCE {nelbo:.1f} nats, no KL"
        column.image(picture(latent.decode(ckpt.model, mu[0]), 4), caption=f"{name}: {score}",
                     alt=f"{name}'s reconstruction of the input from μ, {score}")


def show_samples_and_interpolation(checkpoints: dict) -> None:
    left, right = st.columns(2)
    seed = int(left.number_input("Seed", 0, 10_000, 0, key="compare_seed", on_change=input_chosen))
    ends = right.columns(2)
    test = resources.data_of(next(iter(checkpoints.values()))).test_images
    last = len(test) - 1
    start = int(ends[0].number_input("From test image #", 0, last, min(3, last), key="compare_from",
                                     on_change=input_chosen))
    end = int(ends[1].number_input("to test image #", 0, last, min(2, last), key="compare_to", on_change=input_chosen))
    for name, ckpt in checkpoints.items():
        samples = latent.decode(ckpt.model, latent.prior_samples(16, ckpt.config.latent_dim, seed))
        (mu0, mu1), _ = latent.encode(ckpt.model, test[[start, end]])
        path = latent.decode(ckpt.model, latent.interpolate(mu0, mu1, 10))
        left.image(make_grid(samples, ncol=8, pad=1, scale=2), caption=f"{name}: 16 prior samples, seed {seed}",
                   alt=f"{name}: 16 prior samples, 8 by 2, seed {seed}")
        right.image(make_grid(path, ncol=10, pad=1, scale=2), caption=f"{name}: from #{start} to #{end}",
                    alt=f"{name}: a linear interpolation in 10 steps from test image #{start} to #{end}")
    for ckpt in checkpoints.values():
        views.autoencoder_note(ckpt)


st.title("Compare two models")
st.caption("The same inputs through two models: their cards, curves, reconstructions, samples, maps and films.")
options = [str(p) for p in learner.visible_checkpoints()]
if not options:
    st.warning("No models yet: train one on the Train page.")
    st.stop()
columns = st.columns(2, gap="large")
picked = [pick(side, column, options) for side, column in zip(SIDES, columns)]
if picked[0] is not None and picked[1] is not None and picked[0].path == picked[1].path:
    st.info("Both sides show the same model: every difference below is zero. Pick another model on one side.",
            icon=":material/info:")
checkpoints = {}
for ckpt in picked:
    if ckpt is not None:
        name = ckpt.name
        checkpoints[name if name not in checkpoints else f"{name} (B)"] = ckpt
if len(checkpoints) < 2:
    st.warning("Comparing needs two models that load; the other side says what is wrong.", icon=":material/warning:")
    st.stop()
if st.session_state.pop(CHOSEN_KEY, False):  # a lesson's task: doing something with the two, not opening the page
    learner.record("compare", tuple(sorted(ckpt.name for ckpt in picked)))
    if any(ckpt.config.variational and ckpt.train_config.beta != 1 for ckpt in picked):
        learner.record("beta")

st.header("The two cards", divider="gray")
show_table(checkpoints, columns)
a, b = (ckpt.dataset for ckpt in checkpoints.values())
if a.sha256 != b.sha256:
    st.info(f"These models learned different datasets ({a.name} and {b.name}), so there is no input both take "
            "the same way and no test set to score both on: their cards are all they share. Compare two models "
            "of one dataset to see them side by side.", icon=":material/info:")
    st.stop()
st.header("Test −ELBO during training", divider="gray")
show_curves(checkpoints)
st.header("One input through both", divider="gray")
show_one_input(checkpoints)
st.header("Samples and an interpolation", divider="gray")
show_samples_and_interpolation(checkpoints)
st.header("Both latent maps", divider="gray")
views.linked_maps(checkpoints)
st.header("Both films, on one clock", divider="gray")
if all(ckpt.film is not None for ckpt in checkpoints.values()):
    access.chart(films.lockstep_figure(*checkpoints.values()),
                 words.films_side_by_side({name: ckpt.film for name, ckpt in checkpoints.items()}), key="compare_film")
    st.caption("Each film shows its frame taken at or just before the epoch on the scrubber: a shorter run "
               "stays on its last frame.")
else:
    st.info("Both models need a training film to play them together.", icon=":material/movie:")
