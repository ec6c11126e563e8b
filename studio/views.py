"""Views that more than one page shows, or that a benchmark runs alone: the training film's player
and what to notice in it, and the Compare page's linked maps.

Pages call these with a model's ``vae.checkpoint.Checkpoint``; the figures come from ``studio``'s caches.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from classroom.pages import PAGES
from classroom.progress import Place
from studio import access, analysis, films, learner, resources, words
from studio.datasets import test_caption
from vae import latent
from vae.checkpoint import Checkpoint
from vae.film import Film, epoch_label, gif_bytes
from vae.images import picture

SIDES = ("a", "b")  # the Compare page's two models
SELECTED_KEY = "compare_selected"  # the test digit chosen on either of its maps


def notes(film: Film, kept_epoch: int | None = None, method: str = "pca",
          agreement: tuple | None = None) -> dict[str, str]:
    """What to notice in each view of ``film``, in two short lines each, from its own numbers;
    the map's note is true of ``method``'s layout, whose ``agreement`` (per frame: in the latent,
    on the map; ``films.agreement``) it quotes at the kept frame."""
    last = film.frames - 1 if kept_epoch is None else film.frame_at(kept_epoch)
    peak = int(np.argmax(film.active_units[: last + 1]))
    used, dims = int(film.active_units[last]), film.latent_dim
    collapsed, switched_off = dims - used, int(film.active_units[peak]) - used
    return {
        "map": map_note(film, last, method, agreement),
        "samples": "The same 16 latents z are decoded in every frame: grey blobs first, then strokes, "
                   "then digits that sharpen as the decoder learns what the prior's codes mean.",
        "dims": "An autoencoder pays no KL, so this heatmap stays dark: nothing pulls its codes towards the "
                f"prior. {used} of {dims} dimensions vary from digit to digit." if not film.kl_per_dim.any() else
                f"Each row is one latent dimension. {used} of {dims} light up and carry information; "
                + (f"{collapsed} stay dark at KL ≈ 0: the encoder ignores them and they equal the prior "
                   "(posterior collapse). " if collapsed else "none has collapsed to the prior. ")
                + (f"At epoch {epoch_label(film.epochs[peak])} {film.active_units[peak]} were active: "
                   f"{switched_off} of them switched off again later." if switched_off > 0 else ""),
    }


def map_note(film: Film, frame: int, method: str, agreement: tuple | None) -> str:
    """What the film's map can show in ``method``'s layout, with the numbers of ``frame``."""
    dims, used = film.latent_dim, int(film.active_units[frame])
    if dims == 2:
        return ("These are the raw latent coordinates. Before training (epoch 0) the digits sit in one tangle; "
                "watch the colours pull apart into clusters, most of it inside epoch 1.")
    shared = "" if agreement is None else (
        f" At epoch {epoch_label(film.epochs[frame])}, {agreement[0][frame]:.0%} of the digits' nearest "
        f"neighbours in {dims}-D share their label, {agreement[1][frame]:.0%} on this map.")
    if method == "tsne":
        return ("t-SNE keeps each digit's nearest neighbours near it, so the clusters the latent space forms "
                "show: watch the colours pull apart, most of it inside epoch 1. Sizes and gaps between clusters "
                "mean little." + shared)
    return (f"PCA is the honest linear view: the two directions along which the {used} used dimensions vary "
            "most. The clusters exist, but in any flat view they overlap." + shared
            + (" Choose t-SNE above to see them." if agreement is not None else ""))


def autoencoder_note(ckpt: Checkpoint) -> None:
    """Why variational, where a plain autoencoder's samples or map are shown (nothing for a VAE)."""
    if ckpt.config.variational:
        return
    st.info(f"**{ckpt.name} is a plain autoencoder**: no KL term pulled its codes towards N(0, I), "
            "so a latent drawn from the prior lands where it put no digit and decodes to a blur, and its map has "
            "empty regions that decode to nothing. That is the seed article's case for *adding variation*.",
            icon=":material/lightbulb:")


def film_player(ckpt: Checkpoint, key: str) -> None:
    """Play, pause, step through and export the model's training film; or say why there is none."""
    film = ckpt.film
    if film is None:
        if ckpt.film_error:
            st.warning(f"This model's training film cannot be shown: {ckpt.film_error}. "
                       "The model itself is fine.", icon=":material/movie_off:")
        else:
            st.info("This ckpt has no training film: it was trained before films were recorded, or with "
                    "`--no-film`. Train a ckpt on the Train page to record one.", icon=":material/movie:")
        return
    method = layout_choice(ckpt, key)
    frame_key = f"{key}_frame"
    start = min(st.session_state.get(frame_key, 0), film.frames - 1)  # before training: Play shows it all

    def open_frame(frame: int) -> None:
        """The learner opens ``frame`` (the player keeps it across visits, so only this counts for a lesson)."""
        st.session_state[frame_key] = frame
        if 0 < film.epochs[frame] < 1:
            learner.record("film_epoch_one")

    def step(by: int) -> None:
        open_frame(min(max(start + by, 0), film.frames - 1))

    # Room for "Download GIF" in a narrow column too (the Train page's).
    back, forward, where, export = st.columns([1.3, 1.3, 2.9, 2.5], vertical_alignment="center")
    back.button("◀ Frame", key=f"{key}_back", on_click=step, args=(-1,), disabled=start == 0,
                help="One frame back from the frame the player opened at.")
    forward.button("Frame ▶", key=f"{key}_forward", on_click=step, args=(1,), disabled=start == film.frames - 1,
                   help="One frame forward from the frame the player opened at.")
    where.caption(f"Opened at epoch **{epoch_label(film.epochs[start])}** (frame {start + 1} of {film.frames}). "
                  "**Play** runs in your browser; click the −ELBO curve or the heatmap to open another epoch.")
    layout = films.layout(ckpt, method)
    export.download_button("Download GIF", data=lambda: gif_bytes(film, layout),
                           file_name=f"{ckpt.name}-film.gif",
                           mime="image/gif", icon=":material/download:", key=f"{key}_gif", on_click="ignore")
    event = access.chart(films.player_figure(ckpt, start, method), words.film(film, start), key=f"{key}_chart_{start}",
                         on_select="rerun", selection_mode="points")
    points = [p for p in event["selection"]["points"] if p.get("customdata")]
    if points:
        chosen = points[0]["customdata"]
        open_frame(int(chosen[0] if isinstance(chosen, list) else chosen["0"]))
        st.rerun()
    show_notes(film, ckpt.metrics.epoch, method, films.agreement(ckpt, method))


def layout_choice(ckpt: Checkpoint, key: str) -> str:
    """The film map's layout, chosen above the player for a latent of more than two dimensions: the
    t-SNE map where the clusters show (the default once it exists), or PCA's linear view."""
    if ckpt.config.latent_dim == 2:
        return "pca"  # raw coordinates, whatever the choice
    choice_key = f"{key}_layout"
    ready = films.layout_ready(ckpt, "tsne")
    st.session_state.setdefault(choice_key, "tsne" if ready else "pca")
    return st.radio("Map", LAYOUT_LABELS, format_func=lambda m: LAYOUT_LABELS[m](ready), key=choice_key,
                    horizontal=True, help="t-SNE keeps neighbours together, so clusters show; PCA is the "
                    "two linear directions of largest spread, whose distances are true.")


LAYOUT_LABELS = {"tsne": lambda ready: "Show clusters (t-SNE)" + ("" if ready else ": laid out once, about 20 s"),
                 "pca": lambda ready: "Linear view (PCA)"}


def show_notes(film: Film, kept_epoch: int | None = None, method: str = "pca", agreement: tuple | None = None) -> None:
    for column, text in zip(st.columns(3), notes(film, kept_epoch, method, agreement).values()):
        column.caption(text)


def clicked_digit(selected: int | None) -> int | None:
    """The test digit clicked on either map since the last run, else ``selected``. The maps' keys
    name the digit they ring, so after a click both are drawn afresh, with nothing selected."""
    for side in SIDES:
        state = st.session_state.get(f"compare_map_{side}_{selected}") or {}
        points = [p for p in state.get("selection", {}).get("points", []) if p.get("customdata")]
        if points:
            data = points[0]["customdata"]
            return int(data[0] if isinstance(data, list) else data["0"])
    return selected


@st.fragment
def linked_maps(checkpoints: dict) -> None:
    """Two models' maps of the same test digits, side by side: a digit clicked on either is ringed
    on both, and both decode it. A fragment: a click reruns the maps and their decodings only, not
    the rest of the Compare page (its films' figure alone is megabytes to send again)."""
    selected = st.session_state[SELECTED_KEY] = clicked_digit(st.session_state.get(SELECTED_KEY))
    for side, column, (name, ckpt) in zip(SIDES, st.columns(len(checkpoints)), checkpoints.items()):
        with column:
            st.caption(f"{name}: {'raw latent' if ckpt.config.latent_dim == 2 else 'PCA of the latent means'}")
            _, proj, labels = analysis.compare_map(ckpt)
            access.chart(analysis.compare_map_figure(ckpt, selected),
                         words.clusters(proj.coords, labels, ckpt.dataset.label_names),
                         on_select="rerun", selection_mode="points", key=f"compare_map_{side}_{selected}")
    if selected is None:
        st.info("Click a digit on either map: it is ringed on both, and both models decode it.",
                icon=":material/touch_app:")
        return
    data = resources.data_of(next(iter(checkpoints.values())))  # Compare's maps are of one dataset
    cells = st.columns(1 + len(checkpoints))
    cells[0].image(picture(data.test_images[selected], 4), caption=test_caption(data, selected),
                   alt=test_caption(data, selected))
    for cell, (name, ckpt) in zip(cells[1:], checkpoints.items()):
        mu = analysis.test_encodings(ckpt)[0][selected]
        cell.image(picture(latent.decode(ckpt.model, mu), 4), caption=f"{name} decodes its mean",
                   alt=f"{test_caption(data, selected)}, decoded by {name} from its mean")


# ---------------------------------------------------------------- the lesson panel

PROBLEM_KEY = "lesson_problem"  # session_state: why the URL's lesson could not be opened
ARRIVED_KEY = "lesson_arrived"  # session_state: set once this browser session has found the learner's place
MOVED_KEY = "lesson_moved"  # session_state: the step (0-based) the teacher moved the class to, while the panel is on it


def lesson_params(lesson_id: str, step: int) -> dict:
    """The query parameters that open step ``step`` (0-based) of a lesson: all a URL carries."""
    return {"lesson": lesson_id, "step": str(step + 1)}


# The view of its page a check happens in, opened with the step.
CHECK_VIEWS = {"film_epoch_one": {"map_view": "film"}}
VIEW_KEY = "lesson_view"  # session_state: the widget values of the step just entered, set at the next run
RECAP_KEY = "lesson_recap"  # session_state: the id of the lesson just finished, whose recap Home shows


def step_view(step) -> dict:
    """The widget values that open ``step``'s page where its task happens: CHECK_VIEWS, or for a
    comparison its two models as Compare's A and B."""
    if step.check == "compare":
        return {f"compare_{side}": str(resources.checkpoint_dir() / f"{name}.pt")
                for side, name in zip(SIDES, step.models)}
    return CHECK_VIEWS.get(step.check, {})


def enter_step(lesson, step: int) -> str:
    """Make step ``step`` (0-based) of ``lesson`` this learner's, with its view; its page's id."""
    learner.go(Place(lesson.id, step))
    st.session_state.pop(MOVED_KEY, None)
    # Applied at the next run's start: the page's widgets may already be drawn in this one.
    st.session_state[VIEW_KEY] = step_view(lesson.steps[step])
    return lesson.steps[step].page


def enter_now(lesson, step: int) -> str:
    """``enter_step`` before any widget is drawn in this run, so its view applies at once; its page's id."""
    page = enter_step(lesson, step)
    st.session_state.update(st.session_state.pop(VIEW_KEY))
    return page


def lesson_at(place: Place | None, lessons: dict):
    """The lesson of ``place`` if that step still exists (a lesson file may have changed), else None."""
    lesson = None if place is None else lessons.get(place.lesson)
    return lesson if lesson is not None and 0 <= place.step < len(lesson.steps) else None


def open_lesson(lesson_id: str, step: int) -> None:
    """Go to step ``step`` (0-based) of a lesson: on its page, with the URL saying where."""
    page = enter_step(learner.lessons()[0][lesson_id], step)
    st.switch_page(PAGES[page].file, query_params=lesson_params(lesson_id, step))


def lesson_from_url() -> str | None:
    """Where this run puts the learner: the page of the step they are moved to, else None. A new
    browser session opens where the server has them, whatever the URL says (the URL is rewritten);
    a teacher's move of their class takes them to its step once; else ``?lesson=<id>&step=<k>``
    moves them when it names somewhere new (Back, Next, a link within the app). A lesson or step
    that does not exist is kept as a problem for the panel to explain, never raised."""
    st.session_state.update(st.session_state.pop(VIEW_KEY, {}))
    lessons, _ = learner.lessons()
    arriving = ARRIVED_KEY not in st.session_state
    st.session_state[ARRIVED_KEY] = True
    moved = class_move(lessons)
    if moved is not None:
        return moved
    kept = learner.place()
    if arriving and lesson_at(kept, lessons) is not None:
        st.query_params.from_dict(lesson_params(kept.lesson, kept.step))
        return enter_now(lessons[kept.lesson], kept.step)
    params = st.query_params
    wanted = params.get("lesson")
    if wanted is None:
        return None
    lesson = lessons.get(wanted)
    step_text = params.get("step", "1")
    step = int(step_text) - 1 if step_text.isdigit() else -1
    if lesson is None or not 0 <= step < len(lesson.steps):
        st.session_state[PROBLEM_KEY] = (f"The link asks for a lesson called “{wanted}”, which does not exist."
                                         if lesson is None else f"The lesson “{lesson.title}” has steps 1 to "
                                         f"{len(lesson.steps)}; the link asks for step “{step_text}”.")
        close_lesson()
        return None
    st.session_state.pop(PROBLEM_KEY, None)
    if kept == Place(wanted, step):
        return None  # the URL only repeats where the learner is
    return enter_now(lesson, step)


def class_move(lessons: dict) -> str | None:
    """Follow the teacher's latest move of the learner's class, once, with a notice: the page of
    the step it moves them to, else None. An idle page learns of a move from the badge's check
    (``classes.student_badge``), which runs the page again."""
    mine = learner.my_class()
    if mine is None or not mine.moves(learner.me().progress):
        return None
    learner.follow(mine)
    moved = Place(mine.lesson, mine.moved_to)
    lesson = lesson_at(moved, lessons)
    if lesson is None or learner.place() == moved:  # a step the lesson no longer has, or one they are at
        return None
    page = enter_now(lesson, moved.step)
    st.session_state[MOVED_KEY] = moved.step
    st.query_params.from_dict(lesson_params(moved.lesson, moved.step))
    return page


def keep_url_in_step() -> None:
    """While a lesson is open, the URL names its step (a link to bookmark or to send), whatever page
    the learner has wandered to."""
    current = learner.place()
    if current is not None:
        wanted = lesson_params(current.lesson, current.step)
        if st.query_params.to_dict() != wanted:
            st.query_params.from_dict(wanted)


def lesson_panel() -> None:
    """The open lesson's step (its text, a link to its page, whether it is done, Back and Next), or
    why the URL's lesson could not be opened, with the lessons there are."""
    lessons, problems = learner.lessons()
    problem = st.session_state.get(PROBLEM_KEY)
    current = learner.place()
    if problem:
        with st.container(border=True):
            st.error(problem, icon=":material/error:")
            lesson_list(lessons, problems)
    lesson = lesson_at(current, lessons)
    if lesson is None:
        return
    k = current.step
    step, n = lesson.steps[k], len(lesson.steps)
    done = [learner.step_done(lesson.id, s) for s in lesson.steps]
    with st.container(border=True, key="lesson_panel"):
        st.markdown(f":material/school: **{lesson.title}**")
        if st.session_state.get(MOVED_KEY) == k:
            st.info(f"Your teacher moved the class to step {k + 1}.", icon=":material/campaign:")
        st.progress((k + 1) / n, text=f"Step {k + 1} of {n} · {sum(done)} done")
        st.markdown(f"**{k + 1}. {step.title}**" + (" :green[✓]" if done[k] else ""))
        st.markdown(step.text)
        if step.question is not None:
            question(lesson, k)
        st.page_link(PAGES[step.page].file, label=f"Open {PAGES[step.page].title}", icon=":material/arrow_forward:",
                     query_params=lesson_params(lesson.id, k))
        if done[k]:
            st.success("Done: on to the next step.", icon=":material/check_circle:")
        else:
            st.caption("This ticks itself when you have done it; or skip it with Next.")
        back, forward = st.columns(2)
        if back.button("Back", icon=":material/arrow_back:", disabled=k == 0, key="lesson_back",
                       use_container_width=True):
            open_lesson(lesson.id, k - 1)
        if forward.button("Next" if k < n - 1 else "Finish", icon=":material/arrow_forward:", key="lesson_next",
                          type="primary" if done[k] else "secondary", use_container_width=True):
            if k < n - 1:
                open_lesson(lesson.id, k + 1)
            st.session_state[RECAP_KEY] = lesson.id
            close_lesson()
            st.switch_page(PAGES["home"].file)  # where the recap is
        with st.expander("All steps"):
            for i, (s, ticked) in enumerate(zip(lesson.steps, done)):
                mark = "✓" if ticked else ("→" if i == k else "○")
                st.caption(f"{mark} {i + 1}. {s.title}")
        st.button("Leave the lesson", key="lesson_leave", on_click=close_lesson, type="tertiary")


def lesson_strip() -> None:
    """The open lesson's step in one line above the page, shown on narrow screens only, where the
    sidebar with the lesson's panel starts closed (``studio.access``): the step stays in sight, and the
    line says where its text, question and Next are."""
    lessons, _ = learner.lessons()
    current = learner.place()
    lesson = lesson_at(current, lessons)
    if lesson is None:
        return
    k, n = current.step, len(lesson.steps)
    moved = " Your teacher moved the class here." if st.session_state.get(MOVED_KEY) == k else ""
    with st.container(key="narrow_only"):
        st.info(f"**{lesson.title}**, step {k + 1} of {n}: {lesson.steps[k].title}.{moved} Open the sidebar (») "
                "for the step's text, its question and Next.", icon=":material/school:")


def question(lesson, k: int) -> None:
    """Step ``k``'s question, to answer before its task; once answered, why the choice is right or
    wrong. Every choice is recorded (``learner.answer``), the first being the learner's prediction;
    the step still ticks only on its task."""
    asked = lesson.steps[k].question
    chosen = learner.answers(lesson.id).get(k, [])
    key = f"lesson_question_{lesson.id}_{k}"
    if chosen and key not in st.session_state:  # the panel was on another step meanwhile
        st.session_state[key] = chosen[-1]
    st.radio(f"**Predict first:** {asked.text}", range(1, len(asked.options) + 1), index=None, key=key,
             format_func=lambda i: asked.options[i - 1],
             on_change=lambda: learner.answer(lesson.id, k, st.session_state[key]))
    if chosen:
        right = chosen[-1] == asked.answer
        (st.success if right else st.warning)(
            asked.feedback[chosen[-1] - 1] + ("" if right else " Try another answer."),
            icon=":material/check_circle:" if right else ":material/help:")


def close_lesson() -> None:
    learner.go(None)
    st.query_params.clear()


def lesson_recap() -> None:
    """Home's recap of the lesson just finished, until dismissed: each step done or not, each answer
    (right on the first try or not), the seed article's four ideas in the learner's own numbers, and
    a way to start the lesson again."""
    lessons, _ = learner.lessons()
    lesson = lessons.get(st.session_state.get(RECAP_KEY))
    if lesson is None:
        return
    done = [learner.step_done(lesson.id, s) for s in lesson.steps]
    chosen = learner.answers(lesson.id)
    asked = {k: s.question for k, s in enumerate(lesson.steps) if s.question is not None}
    with st.container(border=True, key="lesson_recap"):
        st.header(f":material/school: You finished “{lesson.title}”")
        steps, predictions = st.columns(2, gap="large")
        with steps:
            st.markdown(f"**What you did**: {sum(done)} of {len(done)} steps")
            st.markdown("  \n".join(f"{'✓' if ticked else '○'} {i}. {s.title}" + ("" if ticked else " (not done)")
                                   for i, (s, ticked) in enumerate(zip(lesson.steps, done), start=1)))
        with predictions:
            right = sum(first_try(q, chosen.get(k, [])) for k, q in asked.items())
            st.markdown(f"**Your predictions**: {right} of {len(asked)} right on the first try")
            st.markdown("\n".join(f"- {prediction(q, chosen.get(k, []))}" for k, q in asked.items()))
        st.markdown("**The seed article's four ideas, in your numbers**")
        st.markdown("\n".join(f"{i}. {line}" for i, line in enumerate(idea_lines(), start=1)))
        if analysis.LAST_DRAWING_KEY not in st.session_state:
            st.page_link(PAGES["draw"].file, label="Draw a digit, and this recap gives its numbers",
                         icon=":material/draw:")
        again, dismiss = st.columns(2)
        if again.button("Start the lesson again", icon=":material/replay:", key="recap_again",
                        help="Unticks its steps and forgets your answers; other lessons keep theirs."):
            learner.restart(lesson.id)
            st.session_state.pop(RECAP_KEY)
            open_lesson(lesson.id, 0)
        dismiss.button("Dismiss", icon=":material/close:", key="recap_dismiss", type="tertiary",
                       on_click=lambda: st.session_state.pop(RECAP_KEY))


def first_try(asked, chosen: list[int]) -> bool:
    """Whether the learner's first choice, their prediction, was the right one."""
    return bool(chosen) and chosen[0] == asked.answer


def prediction(asked, chosen: list[int]) -> str:
    """One question of the recap and how the learner answered it."""
    answer = f"**{asked.options[asked.answer - 1]}**"
    if first_try(asked, chosen):
        return f"*{asked.text}* {answer}: right on the first try."
    said = f"You first said “{asked.options[chosen[0] - 1]}”" if chosen else "Not answered"
    return f"*{asked.text}* {said}; the answer: {answer}."


def idea_lines() -> list[str]:
    """The bottleneck, μ and σ per dimension, z = μ + σ·ε, and the loss, in one line each: with the
    numbers of the learner's last drawing through the active model, and the gap Inside measured,
    where there are some."""
    ckpt = resources.active()
    drawing = analysis.last_drawing(ckpt)
    e = None if drawing is None else analysis.explanation(ckpt, drawing["image"], 0)
    lines = [f"**The bottleneck.** {ckpt.name}'s encoder squeezes an image's {np.prod(ckpt.config.image_shape)} "
             "numbers into "
             f"{ckpt.config.latent_dim} numbers (it uses {analysis.active_units(ckpt)} of them), and its decoder "
             "rebuilds the digit from those alone."]
    if e is not None and e.variational:
        j = int(np.argmax(e.kl_per_dim))  # the dimension that says most about this digit
        mu, sigma, eps = float(e.mu[j]), float(e.sigma[j]), float(e.eps[j])
        lines += [f"**Mean and variance per dimension.** Your digit's most informative dimension, z{j}, is "
                  f"N({mu:.2f}, {sigma:.2f}²): a cloud of codes rather than one point. A collapsed one sits at the "
                  "prior, N(0, 1).",
                  f"**The reparameterisation.** With ε = {eps:.2f}, z{j} = {mu:.2f} + {sigma:.2f} · {eps:.2f} = "
                  f"{float(e.z[j]):.2f}: the randomness sits in ε, so the gradients reach μ and σ.",
                  f"**The loss.** Your digit's −ELBO under {ckpt.name} = BCE {e.bce:.1f} + KL {e.kl:.1f} = "
                  f"{e.loss:.1f} nats: the decoder's error plus the cost of the code."]
    else:
        plain = "" if e is None else (f" {ckpt.name} is a plain autoencoder: one point per digit, no σ, no ε, no "
                                      f"KL; your digit's reconstruction costs BCE {e.bce:.1f} nats.")
        lines += ["**Mean and variance per dimension.** A VAE's encoder gives each dimension a Gaussian N(μ, σ²), "
                  "a cloud of codes rather than one point." + plain,
                  "**The reparameterisation.** z = μ + σ·ε with ε ~ N(0, 1): the randomness sits in ε, so the "
                  "gradients reach μ and σ.",
                  "**The loss.** −ELBO = reconstruction (BCE) + KL, in nats per digit: the decoder's error plus "
                  "the cost of the code."]
    gap = learner.noted().get("gap")
    if gap is not None:
        lines[-1] += (f" On Inside, under {gap.model}, the ELBO fell {gap.value:.2f} nats short of log p(x): the "
                      "gap KL(q‖p(z|x)) between q(z|x) and the true posterior.")
    return lines


def lesson_list(lessons: dict, problems: list[str]) -> None:
    """Each lesson with a link that opens it where this learner left it, and any file left out."""
    for lesson in lessons.values():
        step = min(learner.left_at(lesson.id), len(lesson.steps) - 1)  # a lesson file may have lost steps
        st.page_link(PAGES[lesson.steps[step].page].file, label=f"{lesson.title} ({len(lesson.steps)} steps)",
                     icon=":material/school:", query_params=lesson_params(lesson.id, step),
                     help=lesson.summary)
    for problem in problems:
        st.warning(f"A lesson was left out: {problem}", icon=":material/warning:")
