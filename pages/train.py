"""Train: set up a run, start or stop it, and watch it live. The run itself is the server's one
``studio.training_job()``, so every browser session sees (and can stop) the same run."""

import time
import uuid
from itertools import count

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import studio
import views
from vae.device import precision_label
from vae.jobs import JobSnapshot
from vae.model import ARCHS
from vae.plots import epoch_label
from vae.train import FINE_TUNE_SAMPLES, ConfigError, TrainConfig

LABELS = {"arch": "Architecture", "latent_dim": "Latent size", "beta": "β", "epochs": "Epochs",
          "batch_size": "Batch size", "lr": "Learning rate", "seed": "Seed",
          "train_size": "Training images", "val_size": "Validation images",
          "iw_epochs": "IW epochs", "iw_samples": "IW samples"}
ARCH_HELP = {"conv": "conv: strided convolutions (fast, the default)",
             "tutorial": "tutorial: the seed article's model (5×5 convolutions, constant learning rate)"}
RESULT_BOX = {"finished": (st.success, ":material/check_circle:"), "stopped": (st.warning, ":material/stop_circle:"),
              "failed": (st.error, ":material/error:")}

job = studio.training_job()
# Who this browser session is, to tell the run it started from one started elsewhere.
BROWSER = st.session_state.setdefault("train_browser_id", uuid.uuid4().hex)
CONFIRM_STOP = "train_confirm_stop"  # session_state: the start time of the run whose Stop awaits a yes
DEFAULTS = TrainConfig()  # the form starts from the library's recipe


def unused_name() -> str:
    return next(f"model-{i}" for i in count(1) if not (studio.CHECKPOINT_DIR / f"model-{i}.pt").exists())


def load_preset() -> None:
    """Choosing an architecture loads its recipe's latent size and learning rate into the form
    (the tutorial's recipe is the seed article's: latent 256, lr 1e-3)."""
    recipe = TrainConfig.tutorial() if st.session_state["train_arch"] == "tutorial" else TrainConfig()
    st.session_state["train_latent_dim"] = recipe.latent_dim
    st.session_state["train_lr"] = recipe.lr


def expert_fields(left, right) -> None:
    """The settings that class mode hides (``?class=1``): left at their defaults there."""
    right.number_input(LABELS["batch_size"], value=DEFAULTS.batch_size, step=32, max_value=4096,
                       key="train_batch_size")
    left.number_input(LABELS["lr"], step=5e-4, format="%g", key="train_lr",
                      help="Peak learning rate of AdamW (Adam for the tutorial recipe).")
    right.number_input(LABELS["seed"], value=DEFAULTS.seed, step=1, key="train_seed",
                       help="Same seed and settings, same model.")
    left.number_input(LABELS["val_size"], value=DEFAULTS.val_size, step=500, key="train_val_size",
                      help="Held out of the 60,000 training images to pick the best epoch.")
    left.number_input(LABELS["iw_epochs"], value=DEFAULTS.iw_epochs, step=1, max_value=500, key="train_iw_epochs",
                      help="The last N epochs train on the importance-weighted bound, which aims at "
                           "-log p(x) itself rather than the ELBO (the bundled default: 6 of 69, 2 samples). "
                           "At 2 samples each such epoch costs about 1.8 plain ones. Needs β = 1; "
                           "leave it at 0 to train the ELBO throughout.")
    right.number_input(LABELS["iw_samples"], value=FINE_TUNE_SAMPLES, step=1, max_value=64, key="train_iw_samples",
                       help="Latents decoded per image in the importance-weighted epochs.")


def run_form() -> None:
    """The settings of a new run; on Start, the reason it cannot start, or the start itself."""
    st.session_state.setdefault("train_name", unused_name())
    st.session_state.setdefault("train_latent_dim", DEFAULTS.latent_dim)
    st.session_state.setdefault("train_lr", DEFAULTS.lr)
    st.subheader("New run")
    # Outside the form so that a change can reload the recipe's values before Start.
    st.selectbox("Architecture", ARCHS, key="train_arch", on_change=load_preset,
                 help=" · ".join(ARCH_HELP.values()))
    with st.form("train_form", border=True):
        st.text_input("Name", key="train_name", max_chars=64,
                      help="Saved as NAME.pt in the checkpoint folder: letters, digits, - and _ only.")
        left, right = st.columns(2)
        left.number_input(LABELS["latent_dim"], step=1, max_value=512, key="train_latent_dim",
                          help="Numbers per code: 2 can be plotted directly, 32 reconstructs better.")
        right.number_input(LABELS["beta"], value=DEFAULTS.beta, step=0.1, format="%g", key="train_beta",
                           help="Weight of the KL term; 1 is the true ELBO.")
        left.number_input(LABELS["epochs"], value=10, step=1, max_value=500, key="train_epochs")
        right.number_input(LABELS["train_size"], value=None, step=1000, placeholder="all 59,000",
                           key="train_train_size", help="A random subset for a quick run; empty for all.")
        if not studio.class_mode():  # a class sees the settings a beginner needs; these keep their defaults
            expert_fields(left, right)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if submitted:
        start_run()


def start_run() -> None:
    # A field class mode hid is left out, so the recipe's own value applies.
    settings = {field: st.session_state[f"train_{field}"] for field in LABELS if f"train_{field}" in st.session_state}
    if not settings.get("iw_epochs"):  # no fine-tune: its sample count means nothing, so the run keeps the library's
        settings["iw_samples"] = DEFAULTS.iw_samples
    config = TrainConfig.tutorial(**settings) if settings["arch"] == "tutorial" else TrainConfig(**settings)
    reasons = []
    try:
        config.validate()
    except ConfigError as e:
        reasons.append(f"{LABELS[e.field]} {e.problem}" if e.field in LABELS else str(e)[:1].upper() + str(e)[1:])
    try:
        path = studio.new_checkpoint_path(st.session_state["train_name"])
    except ValueError as e:
        reasons.append(str(e))
    if reasons:
        st.error("Cannot start:\n" + "\n".join(f"- {reason}" for reason in reasons), icon=":material/error:")
        return
    try:
        started = job.start(config, path, data=studio.mnist(), started_by=BROWSER)
    except FileExistsError:
        st.error(f"Cannot start: {path.name} already exists; choose another name.", icon=":material/error:")
        return
    if started:
        studio.record("run")
        studio.class_runs().add(path.stem)
        if config.beta != 1:
            studio.record("beta")
    if not started:
        st.warning("A training run is already in progress (maybe started in another browser tab). "
                   "Stop it or wait for it to finish.", icon=":material/hourglass_top:")


def use_model(path: str) -> None:
    st.session_state[studio.ACTIVE_KEY] = path


def started_line(snap: JobSnapshot) -> str:
    when = time.strftime("%H:%M", time.localtime(snap.started_at))
    return f"Started here at {when}" if snap.started_by == BROWSER else f"Started in another browser at {when}"


def ask_to_stop() -> None:
    st.session_state[CONFIRM_STOP] = job.snapshot().started_at


def stop_run(started_at: float) -> None:
    """Stop the run that started at ``started_at``, not one that has since replaced it."""
    st.session_state.pop(CONFIRM_STOP, None)
    if job.snapshot().started_at == started_at:
        job.stop()


def cancel_stop() -> None:
    st.session_state.pop(CONFIRM_STOP, None)


def stop_controls(snap: JobSnapshot) -> None:
    """Stop: at once for the run this session started; for another's, after a confirmation (any
    session may stop the server's one run, but should not do so by a stray click)."""
    ours = snap.started_by == BROWSER
    if st.session_state.get(CONFIRM_STOP) == snap.started_at and not ours and snap.status == "running":
        with st.container(border=True):
            st.warning(f"{started_line(snap)}: stopping it ends it for everyone watching, keeping its best "
                       "epoch so far. Stop it?", icon=":material/warning:")
            yes, no = st.columns(2)
            yes.button("Yes, stop the run", icon=":material/stop:", key="train_stop_confirm", type="primary",
                       on_click=stop_run, args=(snap.started_at,))
            no.button("No, keep it running", key="train_stop_cancel", on_click=cancel_stop)
        return
    st.button("Stop", icon=":material/stop:", key="train_stop", on_click=stop_run if ours else ask_to_stop,
              args=(snap.started_at,) if ours else (), disabled=snap.status == "stopping",
              help="Ends before the next batch; keeps the best epoch."
                   + ("" if ours else " This run was started in another browser: you will be asked first."))


def live_snapshot(live: bool, period: float) -> JobSnapshot:
    """The run as every session sees it: a refresh shows the snapshot published for all (at most
    one per ``period``); a whole page run, which a user's action asked for, the newest."""
    ctx = get_script_run_ctx()
    if ctx:
        studio.watching(ctx.session_id)
    snap = studio.live_snapshot(period, fresh=not (ctx and ctx.fragment_ids_this_run))
    if live and not snap.running:
        st.rerun()  # the run just ended: redraw the whole app so its model appears in the sidebar
    return snap


def show_status(live: bool) -> None:
    """The run's settings, who started it, its progress and Stop; ``live`` when it reruns every
    LIVE_REFRESH_S."""
    snap = live_snapshot(live, studio.LIVE_PERIOD_S)
    if snap.status == "idle":
        st.info("No run yet. Choose settings and press **Start training**; curves and reconstructions "
                "appear here while it trains.", icon=":material/model_training:")
        return
    config = snap.config
    st.subheader(f"Run “{snap.name}”")
    st.caption(f"{config.arch} VAE · latent size {config.latent_dim} · β {config.beta:g} · "
               f"batch {config.batch_size} · learning rate {config.lr:g} · "
               f"{'all' if config.train_size is None else f'{config.train_size:,}'} training images · "
               + (f"{config.iw_samples}-sample IW bound from epoch {config.fine_tune_start + 1} · "
                  if config.fine_tune_start is not None else "") +
               f"{precision_label(config.precision, studio.device())} on {studio.device_label()}")
    st.caption(f":material/person: {started_line(snap)}.")
    if snap.running:
        st.progress(snap.progress, text=progress_text(snap))
        stop_controls(snap)
    else:
        box, icon = RESULT_BOX[snap.status]
        box(snap.message, icon=icon)
        if snap.checkpoint and snap.checkpoint.is_file():
            if str(snap.checkpoint) == str(studio.active_checkpoint()):
                st.caption(f":material/check_circle: {snap.checkpoint.stem} is the active model.")
            else:
                st.button(f"Use {snap.checkpoint.stem} as the active model", icon=":material/check:",
                          key="train_use", on_click=use_model, args=(str(snap.checkpoint),))


def show_figures(live: bool) -> None:
    """The run's curves, reconstructions and film, built once per change for every session
    watching (``studio.live_view``), renewed as often as the crowd allows now (a session that
    joined when few watched reruns more often, but sees the same figures); ``live`` when it reruns
    on its own."""
    snap = live_snapshot(live, studio.live_figures_period())
    if snap.status == "idle":
        return
    if live:
        studio.record("run")  # watching the class's run counts as much as starting one
    view = studio.live_view(snap)
    if view.curves is not None:
        st.plotly_chart(view.curves, key="train_curves")
    if view.reconstructions is not None:
        st.image(view.reconstructions,
                 caption=f"Top: fixed test images. Bottom: their reconstructions after epoch {view.epochs_done}.")
    elif snap.running:
        st.caption("Reconstructions of ten test digits appear after the first epoch.")
    if snap.film is not None:
        show_film(snap)


def show_film(snap: JobSnapshot) -> None:
    """The film of the run: its newest frame while it trains, the player once it has ended."""
    film = snap.film
    st.subheader("The latent space forming", divider="gray")
    if not snap.running:
        if snap.checkpoint and snap.checkpoint.is_file():
            views.film_player(studio.load_model(snap.checkpoint), key="train_film")
        return
    active = int(film.active_units[-1])
    change = active - int(film.active_units[-2]) if film.frames > 1 else None
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.metric("Active dimensions", f"{active} of {film.latent_dim}", delta=change,
                help="Dimensions whose posterior mean varies over the digits (variance > 0.01): the ones "
                     "the model uses. The others sit at the prior, KL ≈ 0.")
    right.caption(f"Newest frame: epoch {epoch_label(film.epochs[-1])}, frame {film.frames}. Frames are taken "
                  "before the first step, four times inside epoch 1 and after every epoch; the player "
                  "replays them all when the run ends. While the run trains the map is PCA, cheap enough for "
                  "every new frame; the player can then lay it out with t-SNE, where the clusters show.")
    st.plotly_chart(studio.live_film_figure(snap), key="train_film_live")
    views.show_notes(film)


def progress_text(snap: JobSnapshot) -> str:
    if snap.status == "stopping":
        return snap.message
    if not snap.step:
        return f"Preparing… ({snap.elapsed_s:.0f} s)"
    minutes, seconds = divmod(int(snap.eta_s), 60)
    return (f"Epoch {snap.epoch}/{snap.epochs} · step {snap.step:,}/{snap.total_steps:,} · "
            f"{snap.img_per_s:,.0f} img/s · about {minutes}:{seconds:02d} left (plus evaluation)")


st.title("Train a VAE")
st.caption("Runs in the background on the server, one at a time; leaving this page does not stop it.")
form_col, job_col = st.columns([1, 2.3], gap="large")
with form_col:
    run_form()
with job_col:
    # Two live parts: the progress line often; the figures, which cost far more to send to every
    # session, as often for a few watchers and less often for a class.
    if job.snapshot().running:
        st.fragment(run_every=studio.LIVE_REFRESH_S)(show_status)(live=True)
        st.fragment(run_every=studio.live_figures_period())(show_figures)(live=True)
    else:
        show_status(live=False)
        show_figures(live=False)
