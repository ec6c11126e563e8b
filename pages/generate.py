"""New digits from the model: from the prior, from where the data is, of a chosen digit; paths between
two test digits; one dimension at a time."""

import random

import numpy as np
import streamlit as st

from studio import access, analysis, figures, learner, resources, views, words
from studio.datasets import label_phrase, noun, on_dataset, test_caption
from vae import latent, samplers
from vae.checkpoint import Checkpoint
from vae.images import make_grid, picture
from vae.neighbours import SURE_FROM, VOTERS

MAX_TRAVERSAL_ROWS = 12


def seed_chosen() -> None:
    """A seed the learner chose: every grid below, the mixture's included, shows new samples."""
    learner.record("mixture_samples")


def new_seed() -> None:
    st.session_state["gen_seed"] = random.randrange(1_000_000)
    seed_chosen()


def test_digit_input(column, label: str, key: str, default: int) -> int:
    """A test-set index chosen by number, with the image it names shown beside it."""
    test = resources.data_of(ckpt)
    pick, shown = column.columns([3, 1], vertical_alignment="bottom")
    index = int(pick.number_input(label, 0, len(test.test_images) - 1, min(default, len(test.test_images) - 1),
                                  key=key, help=f"Index in {test.info.name}'s test set."))
    shown.image(picture(test.test_images[index : index + 1], 2),
                caption=label_phrase(test.info, int(test.test_labels[index])) if test.info.labelled else None,
                alt=test_caption(test, index))
    return index


def grid_settings() -> tuple[int, int]:
    """The grid size and seed that every sampler below uses, so that their grids compare."""
    size, seed, button = st.columns([2, 2, 1], vertical_alignment="bottom")
    side = size.slider("Grid size", 2, 12, 8, key="gen_side", help="Samples per row and column.")
    st.session_state.setdefault("gen_seed", 0)  # no default in the widget: "New seed" sets the state
    seed_value = int(seed.number_input("Seed", 0, 999_999, key="gen_seed", on_change=seed_chosen))
    button.button("New seed", icon=":material/casino:", on_click=new_seed)
    return side, seed_value


def sample_grid(model, z: np.ndarray, side: int, width: int = 640) -> np.ndarray:
    cell = ckpt.config.image_size + 1  # an image and its padding
    return make_grid(latent.decode(ckpt.model, z), ncol=side, scale=max(1, width // (cell * side)))


def prior_section(ckpt: Checkpoint, side: int, seed: int) -> None:
    thing = noun(ckpt.dataset)
    things = f"{thing}s"
    st.header("Samples from the prior, and from where the data is")
    views.autoencoder_note(ckpt)
    prior, data = st.columns(2, gap="medium")
    with prior:
        st.markdown("**From the prior N(0, I)**")
        st.image(sample_grid(ckpt.model, analysis.sampler_latents(ckpt, "prior", side * side, seed), side, 560),
                 alt=f"Prior samples, {side} by {side}, seed {seed}")
    with data:
        st.markdown(f"**From a {samplers.MIXTURE_COMPONENTS}-Gaussian mixture fitted to the training {things}' "
                    "means**")
        st.image(sample_grid(ckpt.model, analysis.sampler_latents(ckpt, "mixture", side * side, seed), side, 560),
                 alt=f"Samples from the mixture fitted to the training {things}, {side} by {side}, seed {seed}")
    st.caption(f"The KL term pulls each {thing}'s posterior towards N(0, I), but the encoder never spreads the "
               f"training {things} over all of it: they crowd into clusters with gaps between. A prior sample "
               f"often lands in a gap and decodes to a blur or a cross of two {things}; the mixture samples "
               f"where the training {things} actually landed.")


def chosen_digit_section(ckpt: Checkpoint, side: int, seed: int) -> int:
    names = ckpt.dataset.label_names
    st.header("A digit of your choice" if noun(ckpt.dataset) == "digit" else "A label of your choice")
    first = min(analysis.FIRST_DIGIT, len(names) - 1)
    choose = st.segmented_control if len(names) <= 12 else st.selectbox  # a row of buttons, while they fit
    digit = choose("Label", list(range(len(names))), format_func=names.__getitem__, key=f"gen_digit_{ckpt.dataset.key}",
                   **({"default": first} if choose is st.segmented_control else {"index": first}))
    digit = first if digit is None else int(digit)
    try:
        gaussian = analysis.digit_gaussian(ckpt, digit)
    except samplers.TooFewExamplesError as e:
        st.warning(f"{e} Train on more digits to sample this one.", icon=":material/block:")
        return digit
    name = names[digit]
    st.image(sample_grid(ckpt.model, gaussian.sample(side * side, seed=seed), side),
             alt=f"New images of “{name}”, {side} by {side}, seed {seed}")
    st.caption(f"New images of “{name}” drawn from a full-covariance Gaussian fitted to where the model put its "
               f"{gaussian.examples:,} training images of “{name}”. This is conditioning after the fact, using the "
               "labels only now; a conditional VAE would be given the label while it trains.")
    return digit


def quality_section(ckpt: Checkpoint, digit: int) -> None:
    st.header("How good are the samples?")
    qualities = {"prior": ("prior", analysis.sample_quality(ckpt, "prior")),
                 "mixture": ("mixture", analysis.sample_quality(ckpt, "mixture"))}
    try:
        qualities[f"digit {digit}"] = ("digit", analysis.sample_quality(ckpt, "digit", digit))
    except samplers.TooFewExamplesError:
        pass
    st.caption(f"{samplers.QUALITY_SAMPLES:,} samples of each sampler, decoded, encoded again and judged by the "
               "Draw page's vote among the nearest training digits. Even bars mean every digit is made; the "
               "legend says how clear the average sample is (the leading digit's share of the votes).")
    access.chart(figures.sample_quality_figure(qualities, ckpt.dataset.label_names),
                 words.sample_quality(qualities, ckpt.dataset.label_names), key="gen_quality")
    cells = st.columns(len(qualities))
    for cell, (label, (kind, quality)) in zip(cells, qualities.items()):
        if kind == "digit":
            cell.metric(f"Samples of the {digit} recognised as a {digit}", f"{quality.share_of(digit):.0%}")
        else:
            cell.metric(f"{label.capitalize()} samples with a clear verdict", f"{quality.sure:.0%}",
                        help=f"Share of samples whose leading digit gets at least {SURE_FROM} of the {VOTERS} votes.")


def interpolation_section(ckpt: Checkpoint, test_mu: np.ndarray) -> None:
    st.header(f"Interpolation between two test {noun(ckpt.dataset)}s")
    first, second, settings = st.columns([2, 2, 2])
    a = test_digit_input(first, "From test digit", "gen_from", 0)
    b = test_digit_input(second, "To test digit", "gen_to", 1)
    if a != b and (a, b) != (0, 1):  # two digits the learner chose
        learner.record("interpolation")
    steps = settings.slider("Steps", 3, 16, 10, key="gen_steps")
    for method, title, note in (
        ("linear", "Linear", "straight line between the two posterior means"),
        ("slerp", "Spherical (slerp)", "along the great circle, keeping the norm typical of the prior "
                                       "instead of cutting through its centre"),
    ):
        z = latent.interpolate(test_mu[a], test_mu[b], steps, method)
        st.image(make_grid(latent.decode(ckpt.model, z), ncol=steps, scale=3), caption=f"{title}: {note}",
                 alt=f"{title} interpolation in {steps} steps from test #{a} to test #{b}")


def traversal_section(ckpt: Checkpoint, test_mu: np.ndarray, test_logvar: np.ndarray) -> None:
    st.header("Latent traversal")
    st.caption("Each row moves one latent dimension of a test digit's mean from −span to +span "
               "(in prior standard deviations) while the others stay put. Dimensions are listed by their "
               "average KL over the test set: near-zero KL means the model does not use that dimension.")
    # An autoencoder has no KL: its dimensions go by how far its codes spread instead.
    kl = test_mu.var(axis=0) if test_logvar is None else latent.kl_per_dimension(test_mu, test_logvar)
    order = [int(j) for j in np.argsort(-kl)]
    digit, span_col, steps_col = st.columns([2, 2, 2])
    index = test_digit_input(digit, "Around test digit", "gen_traverse", 0)
    span = span_col.slider("Span (± σ)", 0.5, 4.0, 3.0, 0.5, key="gen_span")
    steps = steps_col.slider("Steps", 5, 15, 9, 2, key="gen_traverse_steps")
    dims = st.multiselect(
        f"Dimensions (up to {MAX_TRAVERSAL_ROWS}), most informative first", order,
        default=order[:min(8, len(order))], max_selections=MAX_TRAVERSAL_ROWS,
        format_func=lambda j: f"z{j} · KL {kl[j]:.2f}",
        key=f"gen_dims_{ckpt.name}_{ckpt.config.latent_dim}",  # options differ per model
    )
    if not dims:
        st.info("Pick at least one dimension to traverse.", icon=":material/tune:")
        return
    paths = latent.traversal(test_mu[index], dims, span=span, steps=steps)
    images = latent.decode(ckpt.model, paths.reshape(-1, ckpt.config.latent_dim))
    images = images.reshape(len(dims), steps, *images.shape[1:])
    st.caption(f"−{span:g}σ ← value of the dimension around the digit's mean → +{span:g}σ")
    for j, row in zip(dims, images):
        name, row_cell = st.columns([1, 8], vertical_alignment="center")
        name.markdown(f"**z{j}**  \nKL {kl[j]:.2f}")
        row_cell.image(make_grid(row, ncol=steps, scale=2),
                       alt=f"Test #{index} decoded with z{j} from −{span:g}σ to +{span:g}σ in {steps} steps")


st.title("Generate")
ckpt = resources.active()
if ckpt.dataset.key != "mnist":
    st.markdown(on_dataset(ckpt.dataset))
test_mu, test_logvar = analysis.test_encodings(ckpt)
grid_side, grid_seed = grid_settings()
prior_section(ckpt, grid_side, grid_seed)
if ckpt.dataset.labelled:  # per-label samples and their recognition need labels
    chosen = chosen_digit_section(ckpt, grid_side, grid_seed)
    quality_section(ckpt, chosen)
interpolation_section(ckpt, test_mu)
traversal_section(ckpt, test_mu, test_logvar)
