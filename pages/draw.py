"""Draw (or upload) a digit and watch the model encode, reconstruct and judge it."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from studio import analysis, learner, resources
from vae import latent
from vae.checkpoint import Checkpoint
from vae.images import make_grid, picture
from vae.preprocess import EmptyDrawingError, ImageDecodeError, open_image, to_mnist

CANVAS_SIZE = 280  # 10x MNIST: room to draw; to_mnist brings any pen to MNIST's width
CANVAS_VERSION = "draw_canvas_version"  # bumped by "Clear": a new key mounts an empty canvas
KEPT_KEY = "draw_kept"  # session_state: the last drawing, {"strokes": the canvas's Fabric JSON, "digit": its input}
OPENED_KEY = "draw_opened"  # session_state: the kept drawing (or None) the canvas on the page opened with
NEIGHBOURS = 8
POSTERIOR_SAMPLES = 8


def canvas_key() -> str:
    return f"draw_canvas_{st.session_state.get(CANVAS_VERSION, 0)}"


def clear_canvas() -> None:
    st.session_state[CANVAS_VERSION] = st.session_state.get(CANVAS_VERSION, 0) + 1
    st.session_state.pop(KEPT_KEY, None)


def drawn_digit() -> np.ndarray | None:
    """The canvas as an MNIST input, or None (with a hint) while it is empty. A learner who comes
    back (from another page, or from Upload) finds their last drawing on it, and its analysis."""
    stroke = st.slider("Stroke width", 8, 40, 20, key="draw_stroke",
                       help="Any width: the model sees your digit redrawn in MNIST's stroke width.")
    key = canvas_key()
    if key not in st.session_state:  # a canvas mounted anew: Streamlit forgets a widget that left the page
        st.session_state[OPENED_KEY] = st.session_state.get(KEPT_KEY)
    # Fixed while the canvas lives: the canvas reloads its initial drawing whenever it changes.
    opened = st.session_state[OPENED_KEY]
    result = st_canvas(
        stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
        update_streamlit=True, height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw",
        initial_drawing=None if opened is None else opened["strokes"], return_image_data=True, key=key,
    )
    st.button("Clear", icon=":material/ink_eraser:", on_click=clear_canvas)
    image = result.image_data  # decodes the canvas's PNG on every access
    if image is None and opened is not None:  # nothing drawn since it opened with the kept drawing
        return opened["digit"]
    try:
        if image is None:
            raise EmptyDrawingError
        # White ink on a black canvas: stating it makes even a fully painted canvas all ink.
        digit = to_mnist(image, ink="light")
    except EmptyDrawingError:
        st.session_state.pop(KEPT_KEY, None)  # e.g. every stroke undone
        st.info("Draw a digit on the black canvas: the model's view appears as soon as you lift the pen.",
                icon=":material/draw:")
        return None
    kept = st.session_state.get(KEPT_KEY)
    if kept is None or not np.array_equal(kept["digit"], digit):  # a new drawing, not the kept one shown again
        learner.record("drawing")
    st.session_state[KEPT_KEY] = {"strokes": result.json_data, "digit": digit}
    return digit


def uploaded_digit() -> np.ndarray | None:
    """The uploaded image as an MNIST input, or None with a message saying what is wrong."""
    upload = st.file_uploader("A photo or scan of one digit", type=["png", "jpg", "jpeg"], key="draw_upload",
                              help="Any size; dark ink on light paper or light on dark both work.")
    if upload is None:
        st.info("Upload a PNG or JPEG of a single handwritten digit.", icon=":material/upload:")
        return None
    try:
        digit = to_mnist(open_image(upload.getvalue()))
        learner.record("drawing")
        return digit
    except ImageDecodeError as e:
        st.error(f"{upload.name}: {e}", icon=":material/broken_image:")
    except EmptyDrawingError:
        st.warning(f"{upload.name}: no digit stands out from the background.", icon=":material/image:")
    return None


def typicality(percentile: float) -> str:
    if percentile < 50:
        return "more typical than most test digits"
    if percentile < 90:
        return "within the usual range of test digits"
    if percentile < 99:
        return "less typical than most test digits"
    return "unlike almost all test digits: the model finds it surprising"


def show_analysis(ckpt: Checkpoint, x: np.ndarray) -> None:
    """What the model sees, makes of it and compares it with."""
    mu, logvar = latent.encode(ckpt.model, x)
    mu, logvar = mu[0], logvar[0]
    st.session_state[analysis.LAST_DRAWING_KEY] = {
        "image": x, "mu": mu, "logvar": logvar, "checkpoint": ckpt.key,
    }
    # One decoder pass: the reconstruction from the mean, then the samples from q(z|x) (an
    # autoencoder has none).
    samples_z = [] if logvar is None else [latent.posterior_samples(mu, logvar, POSTERIOR_SAMPLES, seed=0)]
    latents = np.vstack([mu[None], *samples_z])
    decoded = latent.decode(ckpt.model, latents)
    recon, samples = decoded[0], decoded[1:]
    loss = float(latent.negative_elbo(ckpt.model, x)[0])
    reference = analysis.test_negative_elbo(ckpt)
    verdict = analysis.digit_vote(ckpt).vote(mu)

    seen, rebuilt, score = st.columns(3)
    seen.image(picture(x, 5), caption="What the model sees (28×28)")
    rebuilt.image(picture(recon, 5), caption="Reconstruction from the mean of q(z|x)")
    pct = latent.percentile_of(loss, reference)
    score.metric("−ELBO (nats)" if logvar is not None else "Reconstruction loss (nats)", f"{loss:.1f}",
                 help="Negative evidence lower bound: reconstruction error + KL, in nats. Lower means "
                      "the model finds the image more plausible.")
    score.caption(f"Higher than **{pct:.0f}%** of the 10,000 test digits (median "
                  f"{np.median(reference):.0f} nats): {typicality(pct)}.")

    show_verdict(verdict)
    if len(samples):
        st.markdown("**Samples from q(z|x)**: other decodings the encoder considers consistent with your digit")
        st.image(make_grid(samples, ncol=POSTERIOR_SAMPLES, scale=3))
    else:
        st.caption("A plain autoencoder gives one code per digit, not a distribution: there is nothing to sample.")
    with st.expander("Nearest test digits", icon=":material/search:"):
        test_mu, _ = analysis.test_encodings(ckpt)
        near, _ = latent.nearest(test_mu, mu, NEIGHBOURS)
        test = resources.mnist()
        st.image([picture(test.test_images[i].numpy(), 2) for i in near],
                 caption=[f"{int(test.test_labels[i])} · test #{i}" for i in near])


def show_verdict(verdict) -> None:
    """Which digit the model takes the drawing for, and the training digits that voted."""
    if verdict.digit is not None:
        st.success(f"**{verdict.sentence()}**", icon=":material/check_circle:")
    else:
        st.warning(f"**{verdict.sentence()}**", icon=":material/help:")
    st.caption("The model was never told which digit is which. Its encoder still puts digits of one kind "
               "near each other, so the labels of the training digits whose means lie nearest to your "
               "drawing's say what it takes the drawing for, and how split they are says how sure it is.")
    train = resources.mnist()
    st.image([picture(train.train_images[i].numpy(), 2) for i in verdict.neighbours],
             caption=[f"{int(label)} · {distance:.2f} away" for label, distance in
                      zip(verdict.labels, verdict.distances)])


st.title("Draw a digit")
st.caption("Your digit is cropped, scaled to fit 20×20 and centred by its centre of mass in 28×28, "
           "exactly as MNIST's digits were, and its pen thinned or thickened to MNIST's stroke width, "
           "before the model encodes it.")
ckpt = resources.active()
source = st.segmented_control("Input", ["Draw", "Upload"], default="Draw", key="draw_source",
                              label_visibility="collapsed") or "Draw"
left, right = st.columns([2, 3], gap="large")
with left:
    digit = uploaded_digit() if source == "Upload" else drawn_digit()
with right:
    if digit is not None:
        show_analysis(ckpt, digit)
