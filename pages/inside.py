"""Inside the model: one digit through the seed article's equations, with its own numbers and the
code that computed them, for the active model or the run training now."""

import numpy as np
import streamlit as st

from studio import access, analysis, learner, live, resources, runs, words
from studio.datasets import test_caption
from studio.figures import (
    bce_figure,
    kl_bars_figure,
    posterior_figure,
    reparameterisation_figure,
)
from vae import latent, posterior
from vae.checkpoint import Checkpoint
from vae.images import make_grid, picture

OWN_DRAWING = "your last drawing"
SOURCES = {"drawing": "Your last drawing", "test": "A test digit", "map": "Clicked on the Latent map"}
SEED_KEY = "inside_seed"  # the ε shown: "Draw another ε" moves it on
TEST_KEY = "inside_test_index"
DIM_KEY = "inside_dimension"  # the dimension whose KL is written out
LIVE_KEY = "inside_live"  # show the run training now instead of the active model
FOLLOWED_KEY = "inside_followed"  # the id of the run the toggle follows
FIRST_TEST_DIGIT = 0  # a 7: the test set's first digit
WIDE = 32  # more latent dimensions than this: the per-dimension rows show the WIDE largest by KL
PROBE_KEYS = ("inside_probe_a", "inside_probe_b")  # z on the posterior plane, as the number inputs hold it
PROBE_FOR_KEY = "inside_probe_for"  # (model key, image key) the probe belongs to: a new digit starts it at μ
PLANE_CLICKS_KEY = "inside_plane_clicks"  # clicks so far: the chart's key, so each click starts unselected
SCALE_KEY = "inside_sigma_scale"
SCALE_SAMPLES = 8  # decoded from q with its σ scaled


def chosen_input(ckpt: Checkpoint) -> tuple[np.ndarray, str]:
    """The digit to explain and a caption naming it: the last drawing, a test digit by index, or the
    test digit last clicked on the Latent map; without a drawing or a click, a test digit. A drawing
    or a click made with a model of another dataset does not count."""
    test = resources.data_of(ckpt)
    drawing = analysis.last_drawing(ckpt)
    picked = st.session_state.get(analysis.MAP_PICK_KEY)
    if picked is not None and picked >= len(test.test_images):
        picked = None
    st.session_state.setdefault("inside_source", "drawing" if drawing is not None else "test")
    source = st.segmented_control("Input", list(SOURCES), format_func=SOURCES.get, key="inside_source") or "test"
    if source == "drawing" and drawing is not None:
        return drawing["image"], OWN_DRAWING
    if source == "map" and picked is not None:
        return test.test_images[picked].numpy(), test_caption(test, picked) + ", from the map"
    if source != "test":
        st.info("No drawing yet: draw one on the Draw page to see it here. Meanwhile, a test digit."
                if source == "drawing" else "No digit clicked on the Latent map yet. Meanwhile, a test digit.",
                icon=":material/info:")
    last = len(test.test_images) - 1
    index = st.number_input(f"Test image (0 to {last:,})", 0, last, FIRST_TEST_DIGIT, key=TEST_KEY)
    return test.test_images[index].numpy(), test_caption(test, index)


def chosen_model():
    """(checkpoint, what to call it, whether it is a run training now): the active model, or the
    run training now (this browser's own first) as of its latest finished epoch."""
    followed = runs.followed()
    if followed is not None and not st.session_state.get(LIVE_KEY):
        st.session_state[FOLLOWED_KEY] = followed.id
    if (followed is not None or st.session_state.get(LIVE_KEY)) and FOLLOWED_KEY in st.session_state:
        snap = live.snapshot(st.session_state[FOLLOWED_KEY], fresh=True)  # a whole page run shows the newest epoch
        run = live.checkpoint(snap) if snap.weights is not None else None
        following = st.toggle(f"The run training now ({snap.name})", key=LIVE_KEY,
                              disabled=run is None and snap.running,
                              help="Its weights as its latest epoch ended: watch your digit's μ, σ and KL change "
                                   "as it learns. The page updates when the next epoch ends.")
        if following and not snap.running:
            st.info(f"The run {snap.name} has ended" + (f" and its model is saved as **{snap.checkpoint.stem}**."
                    if snap.checkpoint else " without a model to keep."), icon=":material/flag:")
            if snap.checkpoint:
                st.button("Use it as the active model", icon=":material/check:", on_click=st.session_state.update,
                          args=({resources.ACTIVE_KEY: str(snap.checkpoint), LIVE_KEY: False},))
        elif following and run is not None:
            st.fragment(run_every=live.LIVE_REFRESH_S * 2)(follow_run)(snap.id, snap.weights_epoch)
            return run, f"the run {snap.name} after epoch {snap.weights_epoch}", True
    ckpt = resources.active()
    return ckpt, ckpt.name, False


def follow_run(run_id: int, shown_epoch: int) -> None:
    """While the page shows a run training now: a whole rerun once its next epoch has ended."""
    snap = live.snapshot(run_id)
    if snap.weights_epoch != shown_epoch or not snap.running:
        st.rerun(scope="app")
    st.caption(f":material/model_training: Showing epoch {shown_epoch} of {snap.epochs}; the page updates "
               "when the next one ends.")


def formula(tex: str, **numbers: str) -> None:
    """``tex`` as a formula, each ``<name>`` in it replaced by ``numbers[name]`` (TeX's braces rule
    out str.format)."""
    for name, value in numbers.items():
        tex = tex.replace(f"<{name}>", value)
    st.latex(tex)


def new_eps() -> None:
    st.session_state[SEED_KEY] = st.session_state.get(SEED_KEY, 0) + 1
    learner.record("new_eps")


def code(model_code: dict, *parts: str) -> None:
    with st.expander("Our code for this step", icon=":material/code:"):
        st.code("\n\n".join(model_code[part] for part in parts), language="python")


def step_input(e, caption: str) -> None:
    st.header("1 · x, the input", divider="gray")
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.image(picture(e.x, 5), caption=caption, alt=f"x, the input: {caption}")
    right.markdown(f"The model sees **x**: {' × '.join(map(str, e.x.shape))} = {e.x.size} numbers, each between "
                   f"0 (black) and 1 (full {'white' if e.x.ndim == 2 else 'colour'}). This one has "
                   f"{int((e.x > 0.5).sum())} of them above 0.5. The encoder *f* squeezes "
                   f"them through a bottleneck of {len(e.mu)} numbers, the decoder *g* rebuilds the image from "
                   "those: the autoencoder's idea, x' = g(f(x)).")


def step_encoder(e, order, used, model_code) -> None:
    st.header("2 · Encoder → μ and log σ²", divider="gray")
    collapsed = int((~used).sum())
    if not e.variational:
        st.markdown("A plain autoencoder's encoder gives one point per digit, **z = μ**: no σ, no spread. "
                    "That is what it lacks, and the rest of this page shows what follows from it.")
    else:
        st.markdown("The encoder gives not one point but a Gaussian per dimension: a mean **μⱼ** and a log-variance "
                    "**log σⱼ²** (the article's *adding variation*). Dots are μ, bars ±σ, over the prior's 0 ± 1. "
                    + (f"**{collapsed} of {len(e.mu)} dimensions are collapsed**: the model ignores them, so "
                       "for every digit they sit exactly at the prior, μ ≈ 0 and σ ≈ 1 (grey)." if collapsed else
                       "The model uses all its dimensions."))
    ordered_by = "the model's KL" if e.variational else "this digit's |μ|"
    access.chart(posterior_figure(e.mu, e.sigma, order[:WIDE], used, ordered_by),
                 words.dimensions(e.mu, e.sigma, order[:WIDE], used), key="inside_posterior", wide=True)
    if len(order) > WIDE:
        st.caption(f"This page draws the {WIDE} dimensions with the largest KL of {len(order)}; the rest sit at "
                   "the prior like the grey ones.")
    code(model_code, "encoder", "encode")


def step_reparameterisation(e, order, used, model_code) -> None:
    st.header("3 · Reparameterisation: z = μ + σ·ε", divider="gray")
    if not e.variational:
        st.markdown("An autoencoder draws nothing: its z is μ itself, so this step is empty and every decoding "
                    "of your digit is the same image.")
        return
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.markdown("The latent fed to the decoder is a sample z ~ N(μ, σ²), written as **z = μ + σ·ε** with "
                  "**ε ~ N(0, I)**: ε carries all the randomness, so z is a plain sum of μ and σ and the "
                  "gradients of the loss reach the encoder through it.")
    right.button("Draw another ε", icon=":material/casino:", key="inside_new_eps", on_click=new_eps)
    right.caption(f"ε drawn with seed **{e.seed}**")
    access.chart(reparameterisation_figure(e.mu, e.sigma, e.eps, e.z, order[:WIDE]),
                 words.reparameterisation(e.mu, e.sigma, e.eps, e.z, order[:WIDE]), key="inside_reparameterisation",
                 wide=True)
    if not used.all():
        st.caption("In the collapsed dimensions (on the right) μ ≈ 0 and σ ≈ 1, so z is ε itself: pure noise, "
                   "which the decoder has learnt to ignore.")
    sample, mean = st.columns(2)
    sample.image(picture(e.probs, 4), caption=f"Decoded from this z (ε seed {e.seed})", width=140,
                 alt=f"The decoding of z = μ + σ·ε with ε seed {e.seed}")
    mean.image(picture(e.probs_mean, 4), caption="Decoded from μ (ε = 0)", width=140, alt="The decoding of μ, ε = 0")
    code(model_code, "reparameterize")


def step_decoder(e, model_code) -> None:
    st.header("4 · Decoder → x', and the reconstruction loss", divider="gray")
    st.markdown("The decoder *g* turns z into x': for every pixel the probability x'ᵢ that it is white. The "
                "binary cross-entropy charges each pixel for how far x'ᵢ is from xᵢ, and adds them up:")
    formula(r"\mathrm{BCE} = -\sum_{i=1}^{<n>} \left[ x_i \log x'_i + (1 - x_i) \log (1 - x'_i) \right]"
            r" = <bce>\ \text{nats}", n=str(e.x.size), bce=f"{e.bce:.2f}")
    left, right = st.columns([1, 1.3])
    left.image(picture(e.probs, 5), caption="x', the decoder's pixel probabilities",
               alt="x', the decoder's probability of white for each pixel, as grey levels")
    with right:
        access.chart(bce_figure(e.x, e.probs, e.bce_per_pixel), words.pixel_costs(e.bce_per_pixel), key="inside_bce",
                     theme=None)
        worst = np.unravel_index(np.argmax(e.bce_per_pixel), e.bce_per_pixel.shape)
        st.caption(f"Where the BCE is paid: the edges of the strokes, where the decoder is unsure. The costliest "
                   f"pixel, row {worst[0]} column {worst[1]}, costs {e.bce_per_pixel[worst]:.2f} nats.")
    code(model_code, "decoder", "decode", "bce")


def step_kl(e, order, used, model_code) -> None:
    st.header("5 · KL divergence per dimension", divider="gray")
    if not e.variational:
        st.markdown("An autoencoder has no KL term: nothing pulls its codes towards N(0, I), so they may spread "
                    "anywhere and leave gaps that decode to nothing. That is why its prior samples are mostly not "
                    "digits (Generate, Compare).")
        return
    st.markdown("Each dimension pays for how far its Gaussian N(μⱼ, σⱼ²) is from the prior N(0, 1):")
    formula(r"\mathrm{KL} = \sum_{j=1}^{<m>} \tfrac{1}{2}\left(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\right)"
            r" = <kl>\ \text{nats}", m=str(len(e.mu)), kl=f"{e.kl:.2f}")
    shown = order[:WIDE]
    if st.session_state.get(DIM_KEY) not in shown:
        st.session_state[DIM_KEY] = int(shown[0])
    event = access.chart(kl_bars_figure(e.kl_per_dim, shown, used, st.session_state[DIM_KEY]),
                         words.kl_bars(e.kl_per_dim, used, st.session_state[DIM_KEY]),
                         key=f"inside_kl_{st.session_state[DIM_KEY]}", on_select="rerun", selection_mode="points",
                         wide=True)
    clicked = [p for p in event["selection"]["points"] if p.get("customdata")]
    if clicked:
        data = clicked[0]["customdata"]
        st.session_state[DIM_KEY] = int(data[0] if isinstance(data, list) else data["0"])
        st.rerun()
    j = st.selectbox("Dimension", [int(d) for d in shown], key=DIM_KEY,
                     format_func=lambda d: f"z{d}" + ("" if used[d] else " (collapsed)"), help="Or click its bar.")
    if not used[j]:
        learner.record("collapsed_dimension")
    mu, sigma, kl = e.mu[j], e.sigma[j], e.kl_per_dim[j]
    formula(r"\mathrm{KL}_{<j>} = \tfrac{1}{2}\left((<mu>)^2 + <sigma>^2 - 1 - (<logvar>)\right)"
            r" = -\tfrac{1}{2}\left(1 + (<logvar>) - (<mu>)^2 - <sigma>^2\right) = <kl>\ \text{nats}",
            j=str(j), mu=f"{mu:.3f}", sigma=f"{sigma:.3f}", logvar=f"{e.logvar[j]:.3f}", kl=f"{kl:.3f}")
    st.caption(f"The encoder outputs log σ² = {e.logvar[j]:.3f} for z{j} (so σ = {sigma:.3f}): a log-variance can be "
               "any real number, while σ must stay positive. The second form is the seed article's, "
               "−½(1 + log σ² − μ² − σ²): the same number.")
    st.caption(f"z{j} is " + ("a dimension the model uses: its μ moves from digit to digit, its σ is below 1."
                              if used[j] else
                              "collapsed: its KL is about 0 for every digit, because μ ≈ 0 and σ ≈ 1 are exactly "
                              "the prior. The model found it cheaper to ignore it than to pay its KL.")
               )
    code(model_code, "kl")


def step_loss(e, ckpt: Checkpoint, training: bool, model_code) -> None:
    st.header("6 · The loss", divider="gray")
    if e.variational:
        numbers = {"bce": f"{e.bce:.2f}", "kl": f"{e.kl:.2f}", "beta": f"{e.beta:g}"}
        formula(r"-\mathrm{ELBO} = \mathrm{BCE} + \mathrm{KL} = <bce> + <kl> = <loss>\ \text{nats}",
                loss=f"{e.loss:.2f}", **numbers)
        formula(r"\text{trained on: } \mathrm{BCE} + \beta\,\mathrm{KL} = <bce> + <beta> \times <kl> = <objective>",
                objective=f"{e.objective:.2f}", **numbers)
        st.caption("With ε seed 0 this is the −ELBO the Draw page shows for the same drawing; another ε gives "
                   "another one-sample estimate." + (f" This model was trained with β = {e.beta:g}, so its "
                                                     "objective weighs the KL differently." if e.beta != 1 else ""))
    else:
        formula(r"\text{loss} = \mathrm{BCE} = <bce>\ \text{nats}", bce=f"{e.bce:.2f}")
        st.caption("An autoencoder is trained on the reconstruction alone.")
    if training:
        st.caption("How this digit ranks among the test digits is shown for saved models only.")
    else:
        reference = analysis.test_negative_elbo(ckpt)
        pct = latent.percentile_of(e.loss, reference)
        st.metric(f"Higher than this share of the {len(reference):,} test images", f"{pct:.0f}%",
                  help="Of the test digits' −ELBO with the same estimator; lower is more typical.")
    code(model_code, "loss")




def step_posterior(e, ckpt: Checkpoint, image, own_drawing: bool) -> None:
    st.header("7 · Why variational: q(z|x) and the true posterior", divider="gray")
    if not e.variational:
        st.markdown("An autoencoder has no q(z|x): it gives one code per digit, not a distribution, so there is "
                    "no posterior to approximate and no ELBO. Choose a VAE in the sidebar to see this step.")
        return
    st.markdown("By Bayes' rule the latents that explain your digit are distributed as the **true posterior** "
                "p(z|x) = p(x|z) p(z) / p(x). Its normaliser p(x) = ∫ p(x|z) p(z) dz is an integral over every z, "
                "out of reach in many dimensions, so a VAE does not compute it: the encoder outputs a Gaussian "
                "**q(z|x)** that *approximates* it (variational inference), and training maximises the ELBO, which "
                "falls short of log p(x) by exactly how far q is from the true posterior:")
    grid = analysis.posterior_view(ckpt, image, "grid")
    bounds = analysis.posterior_view(ckpt, image, "bounds")
    exact = not grid.sliced
    log_px, elbo = (grid.log_px, grid.elbo) if exact else (bounds[max(bounds)], bounds[1])
    gap = log_px - elbo
    if own_drawing:  # the recap quotes the learner's own digit
        learner.note("gap", gap, ckpt.name)
    formula(r"\underbrace{<elbo>}_{\mathrm{ELBO}} = \underbrace{<log_px>}_{\log p(x)} - "
            r"\underbrace{<gap>}_{\mathrm{KL}(q(z|x)\,\|\,p(z|x))}\ \text{nats}",
            elbo=f"{elbo:.2f}", log_px=f"{log_px:.2f}", gap=f"{gap:.2f}")
    left, right = st.columns([1, 1.4], vertical_alignment="center")
    left.markdown("Training pushes the ELBO up in two ways at once: by explaining x better (log p(x) rises) and by "
                  "making q(z|x) closer to the true posterior (the gap shrinks).")
    left.caption(("On this 2-D latent the posterior is computed on a grid, so log p(x) and the gap are exact up to "
                  "the grid." if exact else
                  f"In {len(e.mu)} dimensions p(x) cannot be summed on a grid: log p(x) is estimated by importance "
                  f"sampling with K = {max(bounds):,}, so this gap is a lower bound.")
                 + " The bars: the bound on log p(x) with K samples from q; K = 1 is the ELBO, and the bounds "
                 "tighten towards log p(x) as K grows; the red bar below them is the gap.")
    with right:
        access.chart(analysis.posterior_view_figure(ckpt, image, "bounds"), words.bounds(bounds, gap, exact),
                     key="inside_bounds")
    names = tuple(f"z{j}" for j in grid.dims)
    if grid.sliced:
        st.info(f"This model's latent has {len(e.mu)} dimensions, so the plane below is a **slice**: through "
                f"{names[0]} and {names[1]}, the two with the most KL for this digit, with every other dimension "
                "held at its μ. Choose **latent2d** in the sidebar for the whole, exact posterior.",
                icon=":material/layers:")
    posterior_handles(ckpt, image, e, grid, names)
    st.caption(fit_verdict(grid))
    sigma_handle(ckpt, image, e)


def fit_verdict(grid) -> str:
    """How well the Gaussian q fits the true posterior on the plane, in one or two sentences."""
    offset = grid.q_mean - grid.post_mean
    off = float(np.sqrt(offset @ np.linalg.solve(grid.post_cov, offset)))
    width = float((np.linalg.det(grid.q_cov) / np.linalg.det(grid.post_cov)) ** 0.25)
    parts = []
    if len(grid.modes) > 1:
        parts.append(f"The true posterior has **{len(grid.modes)} modes** (white crosses): more than one region of z "
                     "explains this digit, and q, a single Gaussian, can cover only one of them.")
    if off > 0.5:
        parts.append(f"q is **off-centre**: its mean is {off:.1f} of the posterior's standard deviations from the "
                     "posterior's mean.")
    if width < 0.8 or width > 1.25:
        parts.append(f"q is **too {'narrow' if width < 1 else 'wide'}**: its ellipse is {width:.2f} times the "
                     "posterior's width.")
    if not parts:
        return (f"q fits closely: same centre, same width (ratio {width:.2f}), and a gap of {grid.gap:.2f} nats. Draw "
                "a messy or ambiguous digit on Draw and come back to see it fit worse.")
    where = "On this slice, KL(q ‖ p) is" if grid.sliced else "That mismatch is the gap of"
    return " ".join(parts) + f" {where} {grid.gap:.2f} nats."


@st.fragment
def posterior_handles(ckpt: Checkpoint, image, e, grid, names) -> None:
    """The plane: a click (or the two number inputs) sets z; the image decoded from z and the
    log-densities there update in this fragment alone."""
    owner = (ckpt.key, analysis.image_key(image))
    if st.session_state.get(PROBE_FOR_KEY) != owner:
        st.session_state[PROBE_FOR_KEY] = owner
        for key, value in zip(PROBE_KEYS, grid.q_mean):
            st.session_state[key] = round(float(value), 3)
    clicks = st.session_state.setdefault(PLANE_CLICKS_KEY, 0)
    picked = [p for p in (st.session_state.get(f"inside_plane_{clicks}") or {}).get("selection", {}).get("points", [])
              if p.get("customdata")]
    if picked:  # z moves there, and the chart is drawn afresh (a new key) with nothing selected
        data = picked[0]["customdata"]
        for key, value in zip(PROBE_KEYS, data if isinstance(data, list) else (data["0"], data["1"])):
            st.session_state[key] = round(float(value), 3)
        clicks = st.session_state[PLANE_CLICKS_KEY] = clicks + 1
        learner.record("posterior_z")
    chart_key = f"inside_plane_{clicks}"
    z_pair = np.array([st.session_state[key] for key in PROBE_KEYS], dtype=np.float32)
    zoom, whole = st.columns([1.25, 1], gap="medium")
    with zoom:
        st.markdown(f"**The true posterior p(z|x)** ({'a slice, ' if grid.sliced else ''}zoomed to where it has its "
                    "mass) and **q(z|x)**'s 1σ and 2σ ellipses. Click to move z.")
        plane = analysis.posterior_view_figure(ckpt, image, "plane", tuple(z_pair.tolist()), names)
        access.chart(plane, words.posterior_plane(grid, z_pair, names), key=chart_key, on_select="rerun",
                     selection_mode="points")
    with whole:
        st.markdown("**The whole latent plane**: the prior's circles, the test digits' means, and the zoomed box.")
        access.chart(analysis.posterior_view_figure(ckpt, image, "overview", names),
                     words.latent_overview(grid, names), key="inside_overview")
    z = e.mu.copy()
    z[list(grid.dims)] = z_pair
    probe = posterior.probe(ckpt.model, image, z)
    inputs, decoded, numbers = st.columns([1, 1, 2.2], vertical_alignment="center")
    with inputs:
        for key, name in zip(PROBE_KEYS, names):
            st.number_input(name, step=0.01, format="%.3f", key=key, on_change=learner.record, args=("posterior_z",),
                            help="Type a coordinate, or click the plane.")
    decoded.image(picture(probe.probs, 4), caption="decoded from this z", width=112,
                  alt="The decoding of z = (" + ", ".join(f"{v:.2f}" for v in z_pair) + ")")
    log_posterior = probe.log_joint - grid.log_px if not grid.sliced else None
    numbers.markdown(
        f"| at this z | nats |\n|---|---:|\n| log p(x\\|z), how well z explains x | {probe.log_likelihood:.2f} |\n"
        f"| log p(z), the prior | {probe.log_prior:.2f} |\n| log q(z\\|x), the encoder's Gaussian | {probe.log_q:.2f} |"
        + (f"\n| log p(z\\|x) = log p(x\\|z) + log p(z) − log p(x), the truth | {log_posterior:.2f} |"
           if log_posterior is not None else ""))
    if log_posterior is not None:
        st.caption("Where q fits, log q(z|x) and log p(z|x) agree near the middle of the ellipse; move z "
                   "outwards, or to another mode, and watch them part.")


@st.fragment
def sigma_handle(ckpt: Checkpoint, image, e) -> None:
    """A slider scales q's σ: the ELBO as a curve over the factor, and samples from the scaled q."""
    st.markdown("**Scale q's σ by hand.** The encoder chose σ; what if q were narrower or wider?")
    scan = analysis.posterior_view(ckpt, image, "sigma")
    left, right = st.columns([1.4, 1], vertical_alignment="center")
    with right:
        scale = st.slider("Scale q's σ by", 0.0, 2.0, 1.0, 0.05, key=SCALE_KEY, format="%.2f×")
        eps = np.random.default_rng(0).standard_normal((SCALE_SAMPLES, len(e.mu))).astype(np.float32)
        samples = latent.decode(ckpt.model, e.mu + scale * e.sigma * eps)
        st.image(make_grid(samples, ncol=SCALE_SAMPLES // 2, scale=2),
                 caption=f"{SCALE_SAMPLES} samples z = μ + {scale:.2f}·σ·ε, decoded",
                 alt=f"{SCALE_SAMPLES} decodings of samples from q with σ scaled by {scale:.2f}")
        if scale == 0:
            st.markdown("At **0×** q is a single point: every sample is the same image, and the KL to the prior is "
                        "**infinite** (log σ² → −∞), so the ELBO is −∞. That is the plain autoencoder's case.")
        else:
            i = int(np.argmin(np.abs(scan.scales - scale)))
            st.markdown(f"ELBO at {scan.scales[i]:.2f}×: **{scan.elbo[i]:.2f}** nats "
                        f"(E[log p(x|z)] {scan.expected_loglik[i]:.2f} − KL {scan.kl[i]:.2f}).")
    with left:
        access.chart(analysis.posterior_view_figure(ckpt, image, "sigma", scale), words.sigma_curve(scan),
                     key="inside_sigma_scan")
    best = scan.best_scale
    if 0.8 <= best <= 1.25:
        left.caption(f"The ELBO peaks near the encoder's own σ (at {best:g}×): narrower and the samples stop covering "
                     "the posterior's width, so E[log p(x|z)] gains little while the KL grows; wider and the samples "
                     "stray where z no longer explains x.")
    else:
        left.caption(f"The ELBO peaks at {best:g}×, not at the encoder's own σ: this digit's best q is "
                     f"{'narrower' if best < 1 else 'wider'} than the one the encoder gave it. One network encodes "
                     "every digit, so for some it falls short of each digit's own best q: the **amortisation gap**.")


st.title("Inside the model")
st.caption("One digit through the seed article's four ideas: the bottleneck, the mean and variance, the "
           "reparameterisation and the loss, each with this digit's own numbers and the code that computed them.")
controls = st.columns([3, 2], gap="large")
with controls[1]:
    ckpt, name, training = chosen_model()
with controls[0]:
    image, caption = chosen_input(ckpt)
st.caption(f"Model: **{name}**" + ("" if ckpt.dataset.key == "mnist" else f", trained on **{ckpt.dataset.name}**"))
e = analysis.explanation(ckpt, image, st.session_state.get(SEED_KEY, 0))
kl, used = analysis.dimension_usage(ckpt)
order = np.argsort(-(kl if e.variational else np.abs(e.mu)), kind="stable")  # an autoencoder has no KL
model_code = analysis.code(ckpt)
step_input(e, caption)
step_encoder(e, order, used, model_code)
step_reparameterisation(e, order, used, model_code)
step_decoder(e, model_code)
step_kl(e, order, used, model_code)
step_loss(e, ckpt, training, model_code)
step_posterior(e, ckpt, image, caption == OWN_DRAWING)
