"""VAE Studio's entry point: page config, navigation, and the sidebar's active-model choice.

Run with ``streamlit run app.py``. This file runs before every page, so the sidebar (and the
active model, kept in session state under ``resources.ACTIVE_KEY``) persists across page switches.
"""

from pathlib import Path

import streamlit as st

from classroom.pages import PAGES
from classroom.queue import QueueError

# studio first: importing it leaves the legacy multipage mode
from studio import access, analysis, classes, gate, learner, resources, runs, views
from vae.checkpoint import CheckpointError

resources.use_one_thread()
st.set_page_config(page_title="VAE Studio", page_icon=":material/blur_on:", layout="wide")
learner.begin_run()  # this browser's learner, as the server has them now; the browser keeps their token

classes.enter()  # a student joins their class before any page; a teacher's link is checked
opened_step = views.lesson_from_url()  # ?lesson=...&step=... names a step: its page comes first
page = st.navigation([st.Page(p.file, title=p.title, icon=p.icon, default=p.id == "home") for p in PAGES.values()
                      if not p.teacher_only or classes.teaches()])
if opened_step is not None and page.url_path != ("" if opened_step == "home" else opened_step):
    st.switch_page(PAGES[opened_step].file, query_params=st.query_params.to_dict())
st.set_page_config(page_title=f"{page.title} · VAE Studio")  # each page's own tab title, as a screen reader reads it
access.style_page(page.url_path)  # contrast, keyboard focus after a page change, narrow screens
views.keep_url_in_step()


def model_selector() -> bool:
    """The active model, chosen among the files in the checkpoint folder; False if there are none."""
    options = [str(p) for p in learner.visible_checkpoints()]
    if not options:
        st.warning("No models yet: train one on the Train page.")
        return False
    if st.session_state.get(resources.ACTIVE_KEY) not in options:
        default = str(resources.default_checkpoint())
        st.session_state[resources.ACTIVE_KEY] = default if default in options else options[0]
    st.selectbox("Active model", options, key=resources.ACTIVE_KEY, format_func=lambda p: Path(p).stem,
                 help="Files in the checkpoint folder. Every page uses the model chosen here.")
    return True


def model_card() -> None:
    """What the active model is and how good it is, or why it cannot be used."""
    path = resources.active_path()
    try:
        ckpt = resources.load(path)
    except CheckpointError as e:
        st.error(f"This model cannot be used: {e}", icon=":material/error:")
        return
    if path == resources.default_checkpoint():  # the model a class starts from
        analysis.warm_up(ckpt)
    config, metrics = ckpt.config, ckpt.metrics
    test_loss = None if metrics.test is None else metrics.test.loss
    kept_epoch = "—" if metrics.epoch is None else metrics.epoch
    epochs_run = len(ckpt.history.epochs) or metrics.epoch
    with st.container(border=True):
        left, right = st.columns(2)
        left.metric("Latent size", config.latent_dim)
        right.metric("β (beta)", f"{ckpt.train_config.beta:g}" if config.variational else "—",
                     help=None if config.variational else "A plain autoencoder: no KL term for β to weigh.")
        shown_loss = "—" if test_loss is None else f"{test_loss:.1f}"
        left.metric("Test −ELBO" if config.variational else "Test BCE", shown_loss,
                    help=f"Negative ELBO on the {ckpt.dataset.test_count:,} test images, in nats per image; lower "
                    "is better." if config.variational else f"Reconstruction loss on the {ckpt.dataset.test_count:,} "
                    "test images: an autoencoder has no KL, so it is not comparable with a VAE's −ELBO.")
        right.metric("Epochs", epochs_run or "—",
                     help=f"Epochs trained; the kept weights are from epoch {kept_epoch}.")
        kind = "" if config.variational else " autoencoder (no KL, z = μ)"
        used = f"**{analysis.active_units(ckpt)} of {config.latent_dim}**"
        st.caption(f"Architecture: **{config.arch}**{kind} · uses {used} latent dimensions",
                   help="Dimensions whose posterior mean varies over the test images "
                   "(variance > 0.01); the others sit at the prior, KL ≈ 0.")
        st.caption(f":material/dataset: Trained on **{ckpt.dataset.name}** ({ckpt.dataset.form})",
                   help=ckpt.dataset.describe() + ".")


with st.sidebar:
    classes.badge()
    lesson_slot = st.container()  # filled after the page: what the learner just did there ticks at once
    if model_selector():
        model_card()
    st.caption(f":material/memory: Device: **{resources.device_label()}**")
    try:
        run_queue = runs.queue()
        st.caption(f":material/dns: Runs train {run_queue.where}.")
        for notice in run_queue.notices:
            st.warning(notice, icon=":material/warning:")
    except QueueError as e:
        st.warning(f"Runs cannot be queued here now: {e}", icon=":material/warning:")

views.lesson_strip()
try:
    with gate.model_work():  # while a run trains, pages queue for the CPU, and say so after a few seconds
        page.run()
finally:  # also after a page's st.stop()
    with lesson_slot:
        views.lesson_panel()
