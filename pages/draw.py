"""Draw (or upload) a digit, or an image for a model of another dataset, and watch the model
encode, reconstruct and judge it."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from studio import analysis, learner, resources
from studio.datasets import neighbour_caption, noun, on_dataset, test_caption
from vae import latent
from vae.checkpoint import Checkpoint
from vae.data import DatasetInfo
from vae.images import make_grid, picture
from vae.preprocess import EmptyDrawingError, ImageDecodeError, drawing_to_model_form, open_image, to_model_form

CANVAS_SIZE = 280  # 10x MNIST: room to draw; to_mnist brings any pen to MNIST's width
CANVAS_VERSION = "draw_canvas_version"  # bumped by "Clear": a new key mounts an empty canvas
KEPT_KEY = "draw_kept"  # session_state: the last drawing: "strokes", the canvas's Fabric JSON; "digit", its
# input to a model of "dataset" (a model of another dataset takes it after a new stroke)
OPENED_KEY = "draw_opened"  # session_state: the kept drawing (or None) the canvas on the page opened with
NEIGHBOURS = 8
POSTERIOR_SAMPLES = 8
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff"]
MAX_IMAGE_BYTES = 20 * 2**20  # one photo or scan; the server takes up to a dataset's zip


def canvas_key() -> str:
    return f"draw_canvas_{st.session_state.get(CANVAS_VERSION, 0)}"


def clear_canvas() -> None:
    st.session_state[CANVAS_VERSION] = st.session_state.get(CANVAS_VERSION, 0) + 1
    st.session_state.pop(KEPT_KEY, None)


def drawn_digit(info: DatasetInfo) -> np.ndarray | None:
    """The canvas as the model's input (``info``'s form), or None (with a hint) while it is empty. A learner who comes
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
    if image is None and opened is not None and opened["dataset"] == info.key:  # nothing drawn since it opened
        return opened["digit"]
    try:
        if image is None:
            raise EmptyDrawingError
        # White ink on a black canvas: stating it makes even a fully painted canvas all ink.
        digit = drawing_to_model_form(image, info)
    except EmptyDrawingError:
        st.session_state.pop(KEPT_KEY, None)  # e.g. every stroke undone
        st.info("Draw a digit on the black canvas: the model's view appears as soon as you lift the pen. "
                "Without a mouse or a touch screen, choose Upload above to use an image.",
                icon=":material/draw:")
        return None
    kept = st.session_state.get(KEPT_KEY)
    if kept is None or not np.array_equal(kept["digit"], digit):  # a new drawing, not the kept one shown again
        learner.record("drawing")
    st.session_state[KEPT_KEY] = {"strokes": result.json_data, "digit": digit, "dataset": info.key}
    return digit


def uploaded_digit(info: DatasetInfo) -> np.ndarray | None:
    """The uploaded image as the model's input, or None with a message saying what is wrong."""
    what = "one digit" if info.key == "mnist" else f"one image like {info.name}'s"
    upload = st.file_uploader(f"A photo or scan of {what}", type=UPLOAD_TYPES, key="draw_upload",
                              help="Any size; dark ink on light paper or light on dark both work.")
    if upload is None:
        st.info(f"Upload an image ({', '.join(UPLOAD_TYPES).upper()}) of {what}.", icon=":material/upload:")
        return None
    if upload.size > MAX_IMAGE_BYTES:
        st.error(f"{upload.name} is {upload.size / 2**20:.0f} MB; one image may be at most "
                 f"{MAX_IMAGE_BYTES // 2**20} MB.", icon=":material/broken_image:")
        return None
    try:
        digit = to_model_form(open_image(upload.getvalue()), info)
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
    mu, logvar = latent.encode(ckpt.model, x[None])  # a batch of one: a colour image is [3, H, W]
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
    loss = float(latent.negative_elbo(ckpt.model, x[None])[0])
    reference = analysis.test_negative_elbo(ckpt)
    seen, rebuilt, score = st.columns(3)
    seen.image(picture(x, 5), caption=f"What the model sees ({ckpt.dataset.size}×{ckpt.dataset.size}"
               + (")" if ckpt.dataset.channels == 1 else ", colour)"),
               alt=f"Your {noun(ckpt.dataset)} as the model sees it, after preprocessing")
    rebuilt.image(picture(recon, 5), caption="Reconstruction from the mean of q(z|x)",
                  alt=f"The model's reconstruction of your {noun(ckpt.dataset)}, decoded from μ")
    pct = latent.percentile_of(loss, reference)
    score.metric("−ELBO (nats)" if logvar is not None else "Reconstruction loss (nats)", f"{loss:.1f}",
                 help="Negative evidence lower bound: reconstruction error + KL, in nats. Lower means "
                      "the model finds the image more plausible.")
    score.caption(f"Higher than **{pct:.0f}%** of the {len(reference):,} test images (median "
                  f"{np.median(reference):.0f} nats): {typicality(pct)}.")

    if ckpt.dataset.labelled:
        show_verdict(ckpt, analysis.digit_vote(ckpt).vote(mu))
    if len(samples):
        st.markdown("**Samples from q(z|x)**: other decodings the encoder considers consistent with your digit")
        st.image(make_grid(samples, ncol=POSTERIOR_SAMPLES, scale=3),
                 alt=f"{len(samples)} decodings of samples from q(z|x) for your {noun(ckpt.dataset)}, in a row")
    else:
        st.caption("A plain autoencoder gives one code per digit, not a distribution: there is nothing to sample.")
    with st.expander(f"Nearest test {noun(ckpt.dataset)}s", icon=":material/search:"):
        test_mu, _ = analysis.test_encodings(ckpt)
        near, _ = latent.nearest(test_mu, mu, NEIGHBOURS)
        test = resources.data_of(ckpt)
        st.image([picture(test.test_images[i : i + 1], 2) for i in near],
                 caption=[neighbour_caption(test, int(i)) for i in near],
                 alt=[test_caption(test, int(i)) for i in near])


def show_verdict(ckpt: Checkpoint, verdict) -> None:
    """Which digit the model takes the drawing for, and the training digits that voted."""
    if verdict.digit is not None:
        st.success(f"**{verdict.sentence()}**", icon=":material/check_circle:")
    else:
        st.warning(f"**{verdict.sentence()}**", icon=":material/help:")
    thing = noun(ckpt.dataset)
    st.caption(f"The model was never told which {thing} is which. Its encoder still puts {thing}s of one kind "
               f"near each other, so the labels of the training {thing}s whose means lie nearest to yours "
               "say what it takes it for, and how split they are says how sure it is.")
    train = resources.data_of(ckpt)
    st.image([picture(train.train_images[i : i + 1], 2) for i in verdict.neighbours],
             caption=[f"{train.info.label_names[label]} · {distance:.2f} away" for label, distance in
                      zip(verdict.labels, verdict.distances)],
             alt=[f"A training {thing} labelled {train.info.label_names[label]}, {distance:.2f} away in the latent"
                  for label, distance in zip(verdict.labels, verdict.distances)])


ckpt = resources.active()
info = ckpt.dataset
if info.key == "mnist":
    st.title("Draw a digit")
    st.caption("Your digit is cropped, scaled to fit 20×20 and centred by its centre of mass in 28×28, "
               "exactly as MNIST's digits were, and its pen thinned or thickened to MNIST's stroke width, "
               "before the model encodes it.")
else:
    st.title("Draw or upload an image")
    st.markdown(on_dataset(info))
    st.caption(f"Your image is made like {info.name}'s: scaled to fit {info.size}×{info.size} and centred on "
               f"a {info.background} background" + (" (a drawing is cropped to its ink first)." if info.channels == 1
                                                    else "."))
sources = ["Draw", "Upload"] if info.channels == 1 else ["Upload"]  # the canvas draws in grey
source = st.segmented_control("Input", sources, default=sources[0], key="draw_source",
                              label_visibility="collapsed") or sources[0]
if info.channels != 1:
    st.caption("This model takes colour images, so there is no canvas: upload one.")
left, right = st.columns([2, 3], gap="large")
with left:
    digit = uploaded_digit(info) if source == "Upload" else drawn_digit(info)
with right:
    if digit is not None:
        show_analysis(ckpt, digit)
