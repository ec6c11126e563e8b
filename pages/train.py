"""Train: queue a run (or a sweep of β), see the class's runs, and watch any of them live. The runs
are the server's queue (``studio.runs``): first queued, first run; every browser sees them all, and
may stop its own, or another's after a confirmation."""

import time
from itertools import count
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from classroom import sweep
from classroom.classes import RUN_SIZES
from classroom.queue import QueueError, Run
from studio import access, analysis, classes, learner, live, resources, runs, views, words
from studio.datasets import show_report
from vae import datasets
from vae.config import LIMITS, OWN_DATA_VAL_SHARE, TrainConfig
from vae.data import DatasetInfo
from vae.device import precision_label
from vae.film import epoch_label
from vae.model import ARCHS, ConfigError
from vae.train import FINE_TUNE_SAMPLES

LABELS = {"arch": "Architecture", "latent_dim": "Latent size", "beta": "β", "epochs": "Epochs",
          "batch_size": "Batch size", "lr": "Learning rate", "seed": "Seed",
          "train_size": "Training images", "val_size": "Validation images",
          "iw_epochs": "IW epochs", "iw_samples": "IW samples"}
ARCH_HELP = {"conv": "conv: strided convolutions (fast, the default)",
             "tutorial": "tutorial: the seed article's model (5×5 convolutions, constant learning rate)"}
RESULT_BOX = {"finished": (st.success, ":material/check_circle:"), "stopped": (st.warning, ":material/stop_circle:"),
              "failed": (st.error, ":material/error:")}
SWEEP_BETAS = "0.25 0.5 1 2 4 8"  # the sweep's default values: both sides of the true ELBO's β = 1
WATCH_KEY = "train_watched"  # session_state: the id of the run this browser watches
PICKED_KEY = "train_picked"  # session_state: the id of the run last chosen in the table
SEEN_KEY = "train_seen"  # session_state: the active runs and their status when the page was last drawn whole
CONFIRM_STOP = "train_confirm_stop"  # session_state: (run id, start) of the run whose Stop awaits a yes
DEFAULTS = TrainConfig()  # the form starts from the library's recipe
UPLOAD = "upload"  # the dataset choice that reads a zip of one's own images
DATA_NEXT = "train_data_next"  # session_state: the dataset an upload added, chosen when the page is drawn next
REPORTS = "train_reports"  # session_state: what each zip this browser added contained, by dataset key

try:
    queue = runs.queue()
except QueueError as e:
    st.error(f"Runs cannot be queued here now: {e}", icon=":material/error:")
    st.stop()
ME = runs.owner()
CLASS = learner.my_class()  # the server's record: its limits and run size hold whatever the URL says


def unused_name() -> str:
    taken = {run.name for run in queue.runs()}
    return next(name for name in (f"model-{i}" for i in count(1))
                if name not in taken and not (resources.checkpoint_dir() / f"{name}.pt").exists())


def load_preset() -> None:
    """Choosing an architecture loads its recipe's latent size and learning rate into the form
    (the tutorial's recipe is the seed article's: latent 256, lr 1e-3)."""
    recipe = TrainConfig.tutorial() if st.session_state["train_arch"] == "tutorial" else TrainConfig()
    st.session_state["train_latent_dim"] = recipe.latent_dim
    st.session_state["train_lr"] = recipe.lr


def expert_fields(left, right, info: DatasetInfo) -> None:
    """The settings that a class does without: left at their defaults there."""
    number(right, "batch_size", value=DEFAULTS.batch_size, step=32)
    number(left, "lr", step=5e-4, format="%g", help="Peak learning rate of AdamW (Adam for the tutorial recipe).")
    number(right, "seed", value=DEFAULTS.seed, step=1, help="Same seed and settings, same model.")
    if info.key == "mnist":
        number(left, "val_size", value=DEFAULTS.val_size, step=500,
               help="Held out of the 60,000 training images to pick the best epoch.")
    else:
        left.number_input("Validation share (%)", 1, 50, round(100 * OWN_DATA_VAL_SHARE), key="train_val_percent",
                          help=f"Held out of {info.name}'s {info.train_count:,} training images to pick the best "
                               "epoch.")
    number(left, "iw_epochs", value=DEFAULTS.iw_epochs, step=1,
           help="The last N epochs train on the importance-weighted bound, which aims at "
                "-log p(x) itself rather than the ELBO (the bundled default: 6 of 69, 2 samples). "
                "At 2 samples each such epoch costs about 1.8 plain ones. Needs β = 1; "
                "leave it at 0 to train the ELBO throughout.")
    number(right, "iw_samples", value=FINE_TUNE_SAMPLES, step=1,
           help="Latents decoded per image in the importance-weighted epochs.")


def number(column, field: str, **options) -> None:
    """The form's input for the number ``field``, at most its limit (``vae.config.LIMITS``), as the
    library and the command line take it."""
    column.number_input(LABELS[field], max_value=LIMITS[field].high, key=f"train_{field}", **options)


def dataset_choice() -> DatasetInfo | None:
    """The dataset the next run trains on: MNIST, scikit-learn's digits, one added before, or a zip
    uploaded here, whose report shows before a run is queued on it. None while an upload is awaited."""
    if DATA_NEXT in st.session_state:  # set before the widget is drawn: Streamlit refuses it after
        st.session_state["train_data"] = st.session_state.pop(DATA_NEXT)
    added = {info.key: info for info in datasets.added_datasets(resources.data_dir())}
    names = {"mnist": "MNIST (70,000 handwritten digits)", "digits": "scikit-learn digits (1,797, 8×8 upscaled)",
             **{key: f"{info.name} ({info.train_count + info.test_count:,} images, {info.form})"
                for key, info in added.items()}, UPLOAD: "Upload a zip of your own images…"}
    choice = st.selectbox("Dataset", list(names), format_func=names.get, key="train_data",
                          help="A zip holds one folder of images per label (or just images, unlabelled).")
    if choice == UPLOAD:
        upload_dataset()
        return None
    data = resources.dataset(choice)
    report = st.session_state.get(REPORTS, {}).get(choice)
    if report is not None:
        with st.expander("What your zip contained", expanded=True, icon=":material/folder_zip:"):
            show_report(report, data)
    elif choice != "mnist":
        st.caption(data.info.describe() + ".")
    return data.info


def upload_dataset() -> None:
    """A zip read into a dataset (kept in the data folder under its content's hash), with a progress
    bar; then chosen for the next run, its report shown. Bad input is said, and nothing is kept."""
    upload = st.file_uploader("A zip of images", type=["zip"], key="train_zip",
                              help="PNG, JPEG, GIF, WEBP, BMP or TIFF, any size; one folder per label.")
    colour = st.toggle("Read in colour (RGB 32×32)", key="train_colour",
                       help="Off: grayscale 28×28, as MNIST. Colour trains slower and needs more images.")
    if upload is None or not st.button("Read the zip", icon=":material/upload_file:", type="primary"):
        return
    limit = datasets.Limits().max_uncompressed_bytes
    if upload.size > limit:
        st.error(f"{upload.name} is {upload.size / 2**20:,.0f} MB; a dataset may be at most {limit // 2**20} MB "
                 "(max_uncompressed_bytes).", icon=":material/error:")
        return
    bar = st.progress(0.0, text="Reading your images…")
    source = resources.data_dir() / "uploads" / f"{abs(hash(upload.file_id))}.zip"
    try:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(upload.getvalue())
        data, report = datasets.add_dataset(
            source, datasets.COLOR if colour else datasets.GRAY, resources.data_dir(), name=Path(upload.name).stem,
            progress=lambda done, total: bar.progress(done / max(total, 1),
                                                      text=f"Reading image {done:,} of {total:,}…"))
    except datasets.DatasetError as e:
        bar.empty()
        st.error(f"{upload.name}: {e}", icon=":material/error:")
        return
    finally:
        source.unlink(missing_ok=True)
    st.session_state.setdefault(REPORTS, {})[data.info.key] = report
    st.session_state[DATA_NEXT] = data.info.key
    st.rerun()


def run_form() -> None:
    """The settings of a new run; on Queue (or Sweep β), the reason it cannot be queued, or the runs queued."""
    st.session_state.setdefault("train_name", unused_name())
    st.session_state.setdefault("train_latent_dim", DEFAULTS.latent_dim)
    st.session_state.setdefault("train_lr", DEFAULTS.lr)
    st.header("New run")
    # A class trains on MNIST unless its teacher let its learners bring their own images.
    info = dataset_choice() if CLASS is None or CLASS.own_data else datasets.MNIST_INFO
    if info is None:
        return
    st.session_state["train_form_data"] = info
    if CLASS is None:  # outside the form so that a change can reload the recipe's values before Queue
        st.selectbox("Architecture", ARCHS, key="train_arch", on_change=load_preset,
                     help=" · ".join(ARCH_HELP.values()))
    with st.form("train_form", border=True):
        st.text_input("Name", key="train_name", max_chars=64,
                      help="Saved as NAME.pt in the checkpoint folder: letters, digits, - and _ only.")
        left, right = st.columns(2)
        number(left, "latent_dim", step=1, help="Numbers per code: 2 can be plotted directly, 32 reconstructs better.")
        number(right, "beta", value=DEFAULTS.beta, step=0.1, format="%g",
               help="Weight of the KL term; 1 is the true ELBO.")
        if CLASS is None:
            number(left, "epochs", value=10, step=1)
            number(right, "train_size", value=None, step=1000,
                   placeholder="all 59,000" if info.key == "mnist" else f"all {round(info.train_count * 0.9):,}",
                   help="A random subset for a quick run; empty for all.")
            expert_fields(left, right, info)
            st.text_input("β values for a sweep", value=SWEEP_BETAS, key="train_sweep_betas",
                          help="Sweep β queues one run per value, with the other settings above, named "
                               "NAME-beta0p5 and so on; the Board then shows the frontier they trace.")
        else:  # a class sees the settings a beginner needs; the others keep their defaults
            class_line()
        queued = st.form_submit_button("Queue my run", type="primary", icon=":material/playlist_add:")
        swept = CLASS is None and st.form_submit_button("Sweep β", icon=":material/tune:")
    if queued:
        queue_runs(*form_run())
    elif swept:
        queue_runs(*sweep_runs())


def runs_queued() -> int:
    """This learner's runs in the queue, ended ones too (a class's reset archives them)."""
    return sum(run.owner == ME for run in queue.runs())


def class_settings() -> dict:
    """What a class sets for a learner's next run: the fast architecture at the class's run size, and a
    seed of the learner's own."""
    size = RUN_SIZES[CLASS.run_size]
    return {"arch": DEFAULTS.arch, "epochs": size.epochs, "train_size": size.train_size,
            "seed": classes.run_seed(ME, runs_queued())}


def class_line() -> None:
    """The run a class's learner queues: its size and seed, set by the class, and what is left of their runs."""
    size, settings, mine = RUN_SIZES[CLASS.run_size], class_settings(), runs_queued()
    st.caption(f":material/school: The class's run size: **{size.label}** · seed **{settings['seed']}**, "
               f"your own · you may queue {max(CLASS.runs_each - mine, 0)} more of {CLASS.runs_each}, one at a time.")


def form_config() -> tuple[TrainConfig | None, list[str]]:
    """The form's run settings, and why they cannot train (empty if they can)."""
    # A field a class hides is left out, so the recipe's own value applies, or the class's.
    settings = {field: st.session_state[f"train_{field}"] for field in LABELS if f"train_{field}" in st.session_state}
    if CLASS is not None:
        settings.update(class_settings())
    if not settings.get("iw_epochs"):  # no fine-tune: its sample count means nothing, so the run keeps the library's
        settings["iw_samples"] = DEFAULTS.iw_samples
    info = st.session_state["train_form_data"]
    settings.update(data=info.key, image_channels=info.channels, image_size=info.size)
    if info.key != "mnist":  # a share: a count that suits MNIST could leave a small dataset nothing to train on
        settings["val_size"] = st.session_state.get("train_val_percent", round(100 * OWN_DATA_VAL_SHARE)) / 100
        trainable = info.train_count - TrainConfig(val_size=settings["val_size"]).validation_count(info.train_count)
        if CLASS is not None and settings["train_size"] is not None and settings["train_size"] > trainable:
            settings["train_size"] = None  # a class's run size counts MNIST's images: a smaller set trains on all
    config = TrainConfig.tutorial(**settings) if settings["arch"] == "tutorial" else TrainConfig(**settings)
    try:
        config.validate()
        config.check_dataset(info)
    except ConfigError as e:
        return None, [f"{LABELS[e.field]} {e.problem}" if e.field in LABELS else str(e)[:1].upper() + str(e)[1:]]
    return config, []


def form_run() -> tuple[list[tuple[str, TrainConfig]], list[str]]:
    """The form's one run as (name, config), or the reasons it cannot be queued."""
    config, reasons = form_config()
    try:
        name = resources.new_checkpoint_path(st.session_state["train_name"]).stem
    except ValueError as e:
        reasons.append(str(e))
    return ([] if reasons else [(name, config)]), reasons


def sweep_runs() -> tuple[list[tuple[str, TrainConfig]], list[str]]:
    """A run per β of the sweep field, the form's other settings, named after the form's name; or
    the reasons they cannot be queued (checked for all before any is)."""
    config, reasons = form_config()
    try:
        betas = [float(text) for text in st.session_state["train_sweep_betas"].replace(",", " ").split()]
    except ValueError:
        return [], reasons + ["The β values must be numbers separated by spaces, e.g. 0.5 1 2."]
    if not betas:
        return [], reasons + ["Give at least one β value to sweep."]
    if reasons:
        return [], reasons
    try:
        planned = sweep.plan(betas, None, st.session_state["train_name"].strip(), resources.checkpoint_dir(), config)
    except ValueError as e:
        return [], [str(e)[:1].upper() + str(e)[1:]]
    return planned, []


def queue_runs(planned: list[tuple[str, TrainConfig]], reasons: list[str]) -> None:
    """Queue ``planned``, all or none, or say why not."""
    if not reasons:
        try:
            queued = queue.submit_all(planned, owner=ME, limit_per_owner=None if CLASS is None else 1,
                                      total_per_owner=None if CLASS is None else CLASS.runs_each)
        except ValueError as e:  # a name taken, the class's limit
            reasons.append(str(e))
    if reasons:
        st.error("Cannot queue:\n" + "\n".join(f"- {reason}" for reason in reasons), icon=":material/error:")
        return
    learner.record("run")
    if any(run.config.beta != 1 for run in queued):
        learner.record("beta")
    st.session_state[WATCH_KEY] = queued[0].id
    st.session_state.pop("train_name")  # the next run gets a fresh name
    st.rerun()  # the table and the fragments that follow a run start from the new queue


def use_model(path: str) -> None:
    st.session_state[resources.ACTIVE_KEY] = path


def queued_line(run: Run) -> str:
    when = time.strftime("%H:%M", time.localtime(run.queued_at))
    return f"Queued by you at {when}" if run.owner == ME else f"Queued by {runs.who(run)} at {when}"


def ask_to_stop(run: Run) -> None:
    st.session_state[CONFIRM_STOP] = (run.id, run.started_at)


def stop_run(run_id: int) -> None:
    st.session_state.pop(CONFIRM_STOP, None)
    queue.stop(run_id)


def cancel_stop() -> None:
    st.session_state.pop(CONFIRM_STOP, None)


def stop_controls(run: Run) -> None:
    """Stop (or take out of the queue): at once for this browser's run; for another's, after a
    confirmation (anyone may stop any run, but should not do so by a stray click)."""
    ours, waiting = run.owner == ME, run.status == "queued"
    label = "Take it out of the queue" if waiting else "Stop"
    if st.session_state.get(CONFIRM_STOP) == (run.id, run.started_at) and not ours and run.active:
        with st.container(border=True):
            st.warning(f"{queued_line(run)}: " + ("taking it out of the queue means it never trains. " if waiting else
                       "stopping it ends it for everyone watching, keeping its best epoch so far. ")
                       + f"{label}?", icon=":material/warning:")
            yes, no = st.columns(2)
            yes.button("Yes, stop the run" if not waiting else "Yes, take it out", icon=":material/stop:",
                       key="train_stop_confirm", type="primary", on_click=stop_run, args=(run.id,))
            no.button("No, keep it", key="train_stop_cancel", on_click=cancel_stop)
        return
    st.button(label, icon=":material/stop:", key="train_stop", on_click=stop_run if ours else ask_to_stop,
              args=(run.id,) if ours else (run,), disabled=run.status == "stopping",
              help=("Ends before the next batch; keeps the best epoch." if not waiting else "It will not train.")
                   + ("" if ours else " Another learner queued this run: you will be asked first."))


def runs_table(all_runs: list[Run]) -> None:
    """The class's runs in queue order, this browser's marked; a row chosen is the run watched."""
    rows = [{"": "★" if run.owner == ME else "", "Name": run.name, "Who": runs.who(run), "β": run.config.beta,
             "Latent": run.config.latent_dim, "Seed": run.config.seed, "Status": run.status,
             "Epoch": f"{len(run.history.epochs)}/{run.epochs}",
             "−ELBO": f"{run.history.epochs[-1].test.loss:.2f}" if run.history.epochs else ""}
            for run in all_runs]
    event = st.dataframe(rows, key="train_runs", hide_index=True, on_select="rerun", selection_mode="single-row",
                         height=min(36 + 35 * len(rows), 320), width="stretch",
                         column_config={"": st.column_config.TextColumn(width=20, help="★ your runs"),
                                        "β": st.column_config.NumberColumn(format="%g"),
                                        "−ELBO": st.column_config.TextColumn(
                                            help="Test −ELBO after the latest epoch, nats per image")})
    chosen = [all_runs[row].id for row in event.selection.rows if row < len(all_runs)]
    picked = chosen[0] if chosen else None
    if picked != st.session_state.get(PICKED_KEY):  # a new choice, not the one still selected since
        st.session_state[PICKED_KEY] = picked
        if picked is not None:
            st.session_state[WATCH_KEY] = picked
            st.rerun(scope="app")  # the figures below follow the chosen run


def watched(all_runs: list[Run]) -> Run | None:
    """The run this browser watches: the one it chose, else its own active run, else the one
    training now, else the newest."""
    by_id = {run.id: run for run in all_runs}
    chosen = by_id.get(st.session_state.get(WATCH_KEY))
    if chosen is not None:
        return chosen
    mine = [run for run in all_runs if run.owner == ME and run.active]
    return (mine or [run for run in all_runs if run.running] or all_runs[-1:] or [None])[0]


def snapshot(run_id: int, period: float) -> Run:
    """The run as every session sees it: a refresh shows the snapshot published for all (at most
    one per ``period``); a whole page run, which a user's action asked for, the newest."""
    ctx = get_script_run_ctx()
    if ctx:
        live.watching(ctx.session_id)
    return live.snapshot(run_id, period, fresh=not (ctx and ctx.fragment_ids_this_run))


def active_now(all_runs: list[Run]) -> set[tuple[int, str]]:
    return {(run.id, run.status) for run in all_runs if run.active}


def show_table() -> None:
    """The class's runs; while one is active it reruns as often as the figures: a table with a row
    per learner costs more to send to every session than the progress line."""
    all_runs = queue.runs()
    if all_runs:
        st.header("The class's runs")
        runs_table(all_runs)


def show_run(live_now: bool) -> None:
    """The watched run's settings, progress and Stop; ``live_now`` when it reruns every
    LIVE_REFRESH_S."""
    all_runs = queue.runs()
    if live_now and active_now(all_runs) != st.session_state.get(SEEN_KEY):
        st.rerun()  # a run started or ended: redraw the whole app (its model in the sidebar, its live views)
    if not all_runs:
        st.info("No runs yet. Choose settings and press **Queue my run**; curves and reconstructions "
                "appear here while it trains.", icon=":material/model_training:")
        return
    run = watched(all_runs)
    snap = snapshot(run.id, live.LIVE_PERIOD_S)
    config = snap.config
    st.header(f"Run “{snap.name}”")
    st.caption(f"{config.arch} VAE · latent size {config.latent_dim} · β {config.beta:g} · "
               f"batch {config.batch_size} · learning rate {config.lr:g} · seed {config.seed} · "
               f"{'all' if config.train_size is None else f'{config.train_size:,}'} training images · "
               + (f"{config.iw_samples}-sample IW bound from epoch {config.fine_tune_start + 1} · "
                  if config.fine_tune_start is not None else "") +
               f"{precision_label(config.precision, resources.device())} {queue.where}")
    st.caption(f":material/person: {queued_line(snap)}.")
    if snap.status == "queued":
        st.info(waiting_line(snap, all_runs), icon=":material/hourglass_top:")
        stop_controls(snap)
    elif snap.running:
        st.progress(snap.progress, text=progress_text(snap))
        stop_controls(snap)
    else:
        box, icon = RESULT_BOX[snap.status]
        box(snap.message, icon=icon)
        if snap.checkpoint and snap.checkpoint.is_file():
            if str(snap.checkpoint) == str(resources.active_path()):
                st.caption(f":material/check_circle: {snap.checkpoint.stem} is the active model.")
            else:
                st.button(f"Use {snap.checkpoint.stem} as the active model", icon=":material/check:",
                          key="train_use", on_click=use_model, args=(str(snap.checkpoint),))


def show_figures(live_now: bool) -> None:
    """The watched run's curves, reconstructions and film, built once per change for every session
    watching (``studio.live``), renewed as often as the crowd allows now; ``live_now`` when it
    reruns on its own. An ended run's come from its file."""
    run = watched(queue.runs())
    if run is None or run.status == "queued":
        return
    snap = snapshot(run.id, live.figures_period())
    if not snap.running:
        show_ended(snap)
        return
    if live_now and st.session_state.get(WATCH_KEY) == run.id:  # one the learner queued or chose, not the default
        learner.record("run")  # watching a class's run counts as much as starting one
    view = live.view(snap)
    if view.curves is not None:
        access.chart(view.curves, words.loss_history(snap.history), key="train_curves")
    if view.reconstructions is not None:
        st.image(view.reconstructions,
                 caption=f"Top: fixed test images. Bottom: their reconstructions after epoch {view.epochs_done}.",
                 alt=f"Ten test images above their reconstructions after epoch {view.epochs_done}")
    else:
        st.caption("Reconstructions of ten test digits appear after the first epoch.")
    if snap.film is not None:
        show_live_film(snap)


def show_ended(snap: Run) -> None:
    """An ended run's curves and film, from its checkpoint (the queue keeps only its table row)."""
    if not (snap.checkpoint and snap.checkpoint.is_file()):
        return
    ckpt = resources.load(snap.checkpoint)
    access.chart(analysis.loss_curves(ckpt), words.loss_history(ckpt.history), key="train_curves")
    if ckpt.film is not None:
        st.subheader("The latent space forming", divider="gray")
        views.film_player(ckpt, key="train_film")


def show_live_film(snap: Run) -> None:
    """The running film's newest frame; the player replays them all when the run ends."""
    film = snap.film
    st.subheader("The latent space forming", divider="gray")
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
    access.chart(live.film_figure_of(snap), words.film(film, film.frames - 1), key="train_film_live")
    views.show_notes(film)


def waiting_line(snap: Run, all_runs: list[Run]) -> str:
    """Where a queued run stands: the runs it waits for, and what a restart did to it."""
    ahead = [r for r in all_runs if r.running or (r.status == "queued" and r.id < snap.id)]
    names = ", ".join(f"{r.name} ({r.status})" for r in ahead[:3]) + (f" and {len(ahead) - 3} more" if len(ahead) > 3
                                                                       else "")
    restart = "" if snap.message == "Waiting for its turn." else f" {snap.message}"
    return (f"Waiting for its turn behind {len(ahead)} run{'s' * (len(ahead) != 1)}: {names}." if ahead else
            "Next in line: it starts in a moment.") + restart


def progress_text(snap: Run) -> str:
    if snap.status == "stopping":
        return snap.message
    if not snap.step:
        return f"Preparing… ({snap.elapsed_s:.0f} s)"
    minutes, seconds = divmod(int(snap.eta_s), 60)
    return (f"Epoch {snap.epoch}/{snap.epochs} · step {snap.step:,}/{snap.total_steps:,} · "
            f"{snap.img_per_s:,.0f} img/s · about {minutes}:{seconds:02d} left (plus evaluation)")


st.title("Train a VAE")
st.caption(f"Runs queue and train {queue.where}, first queued, first run; leaving this page does not stop them. "
           "Choose a row in the table to watch that run.")
form_col, job_col = st.columns([1, 2.3], gap="large")
with form_col:
    run_form()
with job_col:
    # Three live parts: the progress line often; the table and the figures, which cost far more to
    # send to every session, as often for a few watchers and less often for a class.
    st.session_state[SEEN_KEY] = active_now(queue.runs())
    if st.session_state[SEEN_KEY]:
        st.fragment(run_every=live.figures_period())(show_table)()
        st.fragment(run_every=live.LIVE_REFRESH_S)(show_run)(live_now=True)
        st.fragment(run_every=live.figures_period())(show_figures)(live_now=True)
    else:
        show_table()
        show_run(live_now=False)
        show_figures(live_now=False)
