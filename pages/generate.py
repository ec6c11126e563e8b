"""New digits from the model: prior samples, paths between two test digits, one dimension at a time."""

import random

import numpy as np
import streamlit as st

import studio
from vae import latent
from vae.images import make_grid, to_uint8, upscale

MAX_TRAVERSAL_ROWS = 12
TEST_SIZE = 10_000


def new_seed() -> None:
    st.session_state["gen_seed"] = random.randrange(1_000_000)


def test_digit_input(column, label: str, key: str, default: int) -> int:
    """A test-set index chosen by number, with the digit it names shown beside it."""
    test = studio.mnist()
    pick, picture = column.columns([3, 1], vertical_alignment="bottom")
    index = int(pick.number_input(label, 0, TEST_SIZE - 1, default, key=key, help="Index in the MNIST test set."))
    picture.image(upscale(to_uint8(test.test_images[index].numpy())[0], 2),
                  caption=f"a {int(test.test_labels[index])}")
    return index


def prior_section(model) -> None:
    st.subheader("Samples from the prior")
    st.caption("Each image decodes a z drawn from N(0, I), the distribution the KL term pulls every "
               "posterior towards. Blurry or odd samples show where the model's latent space has holes.")
    size, seed, button = st.columns([2, 2, 1], vertical_alignment="bottom")
    side = size.slider("Grid size", 2, 12, 8, key="gen_side", help="Samples per row and column.")
    st.session_state.setdefault("gen_seed", 0)  # no default in the widget: "New seed" sets the state
    seed_value = int(seed.number_input("Seed", 0, 999_999, key="gen_seed"))
    button.button("New seed", icon=":material/casino:", on_click=new_seed)
    z = latent.prior_samples(side * side, model.latent_dim, seed=seed_value)
    st.image(make_grid(latent.decode(model, z), ncol=side, scale=max(1, 640 // (29 * side))))


def interpolation_section(model, test_mu: np.ndarray) -> None:
    st.subheader("Interpolation between two test digits")
    first, second, settings = st.columns([2, 2, 2])
    a = test_digit_input(first, "From test digit", "gen_from", 0)
    b = test_digit_input(second, "To test digit", "gen_to", 1)
    steps = settings.slider("Steps", 3, 16, 10, key="gen_steps")
    for method, title, note in (
        ("linear", "Linear", "straight line between the two posterior means"),
        ("slerp", "Spherical (slerp)", "along the great circle, keeping the norm typical of the prior "
                                       "instead of cutting through its centre"),
    ):
        z = latent.interpolate(test_mu[a], test_mu[b], steps, method)
        st.image(make_grid(latent.decode(model, z), ncol=steps, scale=3), caption=f"{title}: {note}")


def traversal_section(model, test_mu: np.ndarray, test_logvar: np.ndarray) -> None:
    st.subheader("Latent traversal")
    st.caption("Each row moves one latent dimension of a test digit's mean from −span to +span "
               "(in prior standard deviations) while the others stay put. Dimensions are listed by their "
               "average KL over the test set: near-zero KL means the model does not use that dimension.")
    kl = latent.kl_per_dimension(test_mu, test_logvar)
    order = [int(j) for j in np.argsort(-kl)]
    digit, span_col, steps_col = st.columns([2, 2, 2])
    index = test_digit_input(digit, "Around test digit", "gen_traverse", 0)
    span = span_col.slider("Span (± σ)", 0.5, 4.0, 3.0, 0.5, key="gen_span")
    steps = steps_col.slider("Steps", 5, 15, 9, 2, key="gen_traverse_steps")
    dims = st.multiselect(
        f"Dimensions (up to {MAX_TRAVERSAL_ROWS}), most informative first", order,
        default=order[:min(8, len(order))], max_selections=MAX_TRAVERSAL_ROWS,
        format_func=lambda j: f"z{j} · KL {kl[j]:.2f}",
        key=f"gen_dims_{model.checkpoint_path.stem}_{model.latent_dim}",  # options differ per model
    )
    if not dims:
        st.info("Pick at least one dimension to traverse.", icon=":material/tune:")
        return
    paths = latent.traversal(test_mu[index], dims, span=span, steps=steps)
    images = latent.decode(model, paths.reshape(-1, model.latent_dim)).reshape(len(dims), steps, 28, 28)
    st.caption(f"−{span:g}σ ← value of the dimension around the digit's mean → +{span:g}σ")
    for j, row in zip(dims, images):
        name, picture = st.columns([1, 8], vertical_alignment="center")
        name.markdown(f"**z{j}**  \nKL {kl[j]:.2f}")
        picture.image(make_grid(row, ncol=steps, scale=2))


st.title("Generate")
model = studio.active_model()
test_mu, test_logvar = studio.test_encodings(model)
prior_section(model)
interpolation_section(model, test_mu)
traversal_section(model, test_mu, test_logvar)
