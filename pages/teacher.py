"""The teacher's view: every learner of the class, where they are in its lesson, what they answered
first and their runs, refreshed live from the server's records; moving the class to a step, and
resetting it. The navigation lists it only for the browser that opened the class's teacher's link."""

import time
from collections import defaultdict

import streamlit as st

from classroom.classes import Class, ClassError, Learner
from classroom.lessons import Lesson
from classroom.queue import QueueError, Run
from studio import classes, learner, runs

CONFIRM_RESET = "teacher_confirm_reset"  # session_state: the class whose reset awaits a yes
RESET_DONE = "teacher_reset_done"  # session_state: (st.success or st.error, what the last reset did), said once


def ago(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    return f"{seconds // 3600:.0f} h ago"


def run_line(run: Run) -> str:
    loss = f", −ELBO {run.history.epochs[-1].test.loss:.1f}" if run.history.epochs else ""
    return f"{run.name} ({run.status}, epoch {len(run.history.epochs)}/{run.epochs}{loss})"


def first_answer(lesson: Lesson, k: int, chosen: tuple[int, ...]) -> str:
    """The option a learner chose first for step ``k``'s question, marked right or wrong."""
    if not chosen:
        return ""
    return f"{'✓' if chosen[0] == lesson.steps[k].question.answer else '✗'} {chosen[0]}"


def row(one: Learner, lesson: Lesson, theirs: list[Run], now: float) -> dict:
    progress, place = one.progress, one.progress.place
    answers = progress.answers_of(lesson.id)
    at_step = place is not None and place.lesson == lesson.id and place.step < len(lesson.steps)
    return {"Name": one.name,
            "Step": f"{place.step + 1}. {lesson.steps[place.step].title}" if at_step else "not in the lesson",
            "Done": f"{sum(progress.step_done(lesson.id, s) for s in lesson.steps)} of {len(lesson.steps)}",
            **{f"Q{k + 1}": first_answer(lesson, k, answers.get(k, ())) for k in questions(lesson)},
            "Runs": "; ".join(run_line(run) for run in theirs) or "none",
            "Last active": ago(now - one.seen_at)}


def questions(lesson: Lesson) -> list[int]:
    """The steps (from 0) that ask a question."""
    return [k for k, step in enumerate(lesson.steps) if step.question is not None]


def learners_table(lesson: Lesson) -> None:
    """The class's learners, read again every few seconds from the store and the queue: cheap reads
    only, so that a run training on this server hardly notices the view."""
    try:
        taught = classes.teaching()
        ones = learner.room().learners(taught.id)
    except (ClassError, QueueError) as e:
        st.error(f"The class's learners cannot be read now: {e}", icon=":material/error:")
        return
    by_owner = defaultdict(list)
    for run in runs.all_runs():
        by_owner[run.owner].append(run)
    now = time.time()
    rows = [row(one, lesson, by_owner[one.token], now) for one in ones]
    moved = ("" if taught.moved_to is None else f" The class was moved to step {taught.moved_to + 1} at "
             f"{time.strftime('%H:%M', time.localtime(taught.moved_at))}.")
    if not rows:
        st.info("No student has joined yet: send them the class link." + moved, icon=":material/group:")
        return
    st.caption(f"{len(rows)} learner{'s' * (len(rows) != 1)} · refreshed every {classes.TEACHER_REFRESH_S} s."
               + moved)
    helps = {"Done": "Steps done of the lesson's, by what the learner did",
             **{f"Q{k + 1}": f"Step {k + 1}: {lesson.steps[k].question.text} The option chosen first (the "
                             "prediction): ✓ right on the first try, ✗ not." for k in questions(lesson)},
             "Runs": "Name (status, epoch, test −ELBO after the latest epoch)",
             "Last active": "When the learner's browser last kept their progress"}
    st.dataframe(rows, key="teacher_learners", hide_index=True, width="stretch",
                 column_config={column: st.column_config.TextColumn(help=text) for column, text in helps.items()})


def move_class(taught: Class, lesson: Lesson) -> None:
    step = st.number_input("Step", 1, len(lesson.steps), (taught.moved_to or 0) + 1, key="teacher_step")
    if st.button(f"Move the class to step {step}", icon=":material/fast_forward:", key="teacher_move",
                 help="Each student's lesson panel moves to this step, with a line saying so."):
        learner.room().move(taught.id, step - 1)
        st.success(f"The class is on step {step}: {lesson.steps[step - 1].title}.", icon=":material/check_circle:")


def ask_to_reset(class_id: int) -> None:
    st.session_state[CONFIRM_RESET] = class_id


def cancel_reset() -> None:
    st.session_state.pop(CONFIRM_RESET, None)


def reset_class(class_id: int) -> None:
    st.session_state.pop(CONFIRM_RESET, None)
    try:
        archived = learner.room().reset(class_id)
    except QueueError as e:
        st.session_state[RESET_DONE] = (st.error, f"The class was not reset: {e}")
        return
    st.session_state[RESET_DONE] = (st.success, f"The class starts afresh: {archived} run{'s' * (archived != 1)} "
                                    "archived (kept, not deleted), every learner's progress cleared, names kept.")


def reset_controls(taught: Class) -> None:
    """Reset the class, after a confirmation that says what it does."""
    if RESET_DONE in st.session_state:
        box, text = st.session_state.pop(RESET_DONE)
        box(text, icon=":material/restart_alt:")
    if st.session_state.get(CONFIRM_RESET) != taught.id:
        st.button("Reset the class…", icon=":material/restart_alt:", key="teacher_reset", on_click=ask_to_reset,
                  args=(taught.id,))
        return
    theirs = {one.token for one in learner.room().learners(taught.id)}
    count = sum(run.owner in theirs for run in runs.all_runs())
    with st.container(border=True):
        st.warning(f"Reset “{taught.name}”? Its {count} run{'s' * (count != 1)} are stopped and archived (their models "
                   "move out of the checkpoint folder, kept) and every learner's lesson progress and answers are "
                   "cleared; their names stay.", icon=":material/warning:")
        yes, no = st.columns(2)
        yes.button("Yes, reset the class", icon=":material/restart_alt:", key="teacher_reset_yes", type="primary",
                   on_click=reset_class, args=(taught.id,))
        no.button("No, keep it", key="teacher_reset_no", on_click=cancel_reset)


st.title("Teacher's view")
try:
    taught = classes.teaching()
except (ClassError, QueueError) as e:
    st.error(f"The class cannot be shown: {e}", icon=":material/error:")
    st.stop()
if taught is None:
    st.error("Only a class's teacher sees this page: open the teacher's link from Home.", icon=":material/lock:")
    st.stop()
lesson = learner.lessons()[0].get(taught.lesson)
if lesson is None:
    st.error(f"The class's lesson “{taught.lesson}” is not on this server (see the lessons on Home).",
             icon=":material/error:")
    st.stop()
st.caption(f"“{taught.name}” · {lesson.title} ({len(lesson.steps)} steps)")
st.fragment(run_every=classes.TEACHER_REFRESH_S)(learners_table)(lesson)
try:
    left, right = st.columns(2, gap="large")
    with left:
        move_class(taught, lesson)
    with right:
        reset_controls(taught)
except QueueError as e:
    st.error(f"The class's records cannot be read or kept now: {e}", icon=":material/error:")
with st.expander("The class's links"):
    classes.show_links(taught)
