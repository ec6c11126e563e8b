"""A class in the app (AppTest): a teacher starts it on Home and gets its two links, students join
under names, the teacher's view lists them with their step and first answers, moves them and resets
the class; class mode is the server's (its limits, run size and seeds hold whatever the URL says).
The classes themselves: test_classes.py."""

import json
import sqlite3

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classroom.classes import RUN_SIZES, Classroom, RunSize, new_token
from classroom.progress import Place
from classroom.store import DATABASE
from harness import ROOT, TINY
from harness.apptest import RUN_TIMEOUT_S, click, fill_form, press_queue, texts
from studio import classes, identity, learner
from vae.config import TrainConfig
from vae.settings import configure


@pytest.fixture
def room(run_queue, monkeypatch):
    """The server's classroom, with a class's run size a test's tiny run."""
    monkeypatch.setitem(RUN_SIZES, "lesson", RunSize(TINY["epochs"], TINY["train_size"], "a tiny run"))
    return Classroom(run_queue)


def browser(token: str | None = None, page: str | None = None, **query) -> AppTest:
    """The app in a new browser whose cookie holds ``token``, opened at ``?query``, then on ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    at.session_state[identity.TOKEN_KEY] = token or new_token()
    at.query_params.update({key: str(value) for key, value in query.items()})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def join(at: AppTest, name: str) -> AppTest:
    at.text_input(key="class_join_name").set_value(name)
    next(b for b in at.button if b.label == "Join the class").click().run()
    assert not at.exception, at.exception
    return at


def student(room: Classroom, class_id: int, name: str, page: str | None = None, **query) -> tuple[str, AppTest]:
    """A student who joined the class under ``name`` by its link; their token and browser."""
    token = new_token()
    at = join(browser(token, **{"class": class_id}), name)
    assert room.learner(token).name == name
    if page:
        at.switch_page(page).run()
    return token, at


def test_a_teacher_starts_a_class_on_home_and_gets_both_links(room):
    at = browser()
    at.text_input(key="home_class_name").set_value("Week 3")
    assert at.selectbox(key="home_class_lesson").value == "vae-basics", "the basics first"
    assert at.selectbox(key="home_class_run_size").value == "lesson"
    at.number_input(key="home_class_runs_each").set_value(2)
    next(b for b in at.button if b.label == "Start the class").click().run()
    assert not at.exception, at.exception
    (week,) = room.classes()
    assert (week.name, week.lesson, week.run_size, week.runs_each, week.own_data) == \
        ("Week 3", "vae-basics", "lesson", 2, False)
    class_link, teacher_link = (code.value for code in at.code)
    base = class_link.removesuffix(f"/?class={week.id}")
    assert base.startswith("http://") and teacher_link == f"{base}/?class={week.id}&teacher={week.secret}"
    assert "localhost" not in base or "no network address" in texts(at), "a teacher's localhost reaches no student"
    assert "Open the teacher's view" in [link.label for link in at.get("page_link")]

    configure(public_url="https://vae.example.edu")
    at.run()
    assert at.code[0].value == f"https://vae.example.edu/?class={week.id}"
    assert "VAE_STUDIO_PUBLIC_URL" in texts(at)


def test_a_student_joins_under_a_name_that_is_their_own(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    at = browser(**{"class": week.id})
    assert at.title[0].value == "Join “Week 3”", "no page before a name"
    assert "Please type a name." in join(at, "  ").error[0].value
    assert "letters, digits" in join(at, "<b>Ada</b>").error[0].value
    join(at, "Ada")
    assert at.title[0].value == "Draw a digit", "the class's lesson opens at its first step"
    assert any(c.value == ":material/school: Class: **Week 3** · you are **Ada**" for c in at.sidebar.caption)

    second = join(browser(**{"class": week.id}), "Ada")
    assert "already called 'Ada'" in second.error[0].value, "the second of two choosing one name is told"
    assert [one.name for one in room.learners(week.id)] == ["Ada"]


def test_a_wrong_class_or_teachers_secret_is_refused_in_words(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    assert "There is no class 99" in browser(**{"class": 99}).error[0].value
    assert "not a class number" in browser(**{"class": "x"}).error[0].value
    guessed = browser(**{"class": week.id, "teacher": "guessed"})
    assert "This teacher's link is not right" in guessed.error[0].value
    assert classes.TEACHER_KEY not in guessed.session_state, "no teacher's view for a guess"
    assert "Teacher" not in texts(guessed)


def test_the_teachers_view_lists_each_student_with_their_step_and_first_answers(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    lesson = learner.lessons()[0]["vae-basics"]
    asked = [k for k, step in enumerate(lesson.steps) if step.question is not None][:2]
    right = [lesson.steps[k].question.answer for k in asked]
    for name, step, first in (("Ada", 0, None), ("Grace", 2, right[0]), ("Alan", 4, right[0] % 2 + 1)):
        token = new_token()
        room.join(token, week.id, name)
        progress = room.learner(token).progress.at(Place("vae-basics", step)).did("drawing")
        if first is not None:
            progress = progress.answer("vae-basics", asked[0], first).answer("vae-basics", asked[0], right[0])
        room.save(token, progress)
    teacher = browser(page="pages/teacher.py", **{"class": week.id, "teacher": week.secret})
    assert teacher.title[0].value == "Teacher's view"
    table = teacher.dataframe[0].value
    assert list(table["Name"]) == ["Ada", "Alan", "Grace"]
    assert list(table["Step"]) == [f"{k + 1}. {lesson.steps[k].title}" for k in (0, 4, 2)]
    assert list(table["Done"]) == [f"1 of {len(lesson.steps)}"] * 3, "step 1 (draw a digit) done by each"
    assert list(table[f"Q{asked[0] + 1}"]) == ["", f"✗ {right[0] % 2 + 1}", f"✓ {right[0]}"], "the first choice"


def test_move_to_step_3_moves_a_students_panel(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    _, ada = student(room, week.id, "Ada")
    teacher = browser(page="pages/teacher.py", **{"class": week.id, "teacher": week.secret})
    teacher.number_input(key="teacher_step").set_value(3).run()
    next(b for b in teacher.button if b.key == "teacher_move").click().run()
    assert room.class_of(week.id).moved_to == 2
    ada.run()
    assert not ada.exception, ada.exception
    assert "Step 3 of" in ada.sidebar.get("progress")[0].proto.text, "the panel follows the teacher"


def badge_tick(class_id: int) -> None:
    """An AppTest script: one tick of a student's badge, as its fragment runs every few seconds on an
    idle page (AppTest runs no fragment alone), in the script's first run only; ``runs`` counts the
    runs, so a second is the whole page run again that the tick asked for."""
    import streamlit as st

    from studio import classes, learner
    st.session_state["runs"] += 1
    if st.session_state["runs"] == 1:
        classes.student_badge(learner.room().class_of(class_id))


def test_an_idle_students_badge_checks_for_a_move_and_runs_the_page_again(room, monkeypatch):
    every = {}
    fragment = st.fragment

    def recorded(func=None, *, run_every=None, **options):
        if func is None:
            return lambda f: recorded(f, run_every=run_every, **options)
        every[func.__name__] = run_every
        return fragment(func, run_every=run_every, **options)

    monkeypatch.setattr(st, "fragment", recorded)
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    token, ada = student(room, week.id, "Ada")
    assert every["student_badge"] == classes.MOVE_CHECK_S, "the badge checks on its own, however idle the page"
    assert "you are **Ada**" in " ".join(c.value for c in ada.sidebar.caption)

    def tick() -> int:
        at = AppTest.from_function(badge_tick, args=(week.id,), default_timeout=RUN_TIMEOUT_S)
        at.session_state[identity.TOKEN_KEY] = token
        at.session_state["runs"] = 0
        at.run()
        assert not at.exception, at.exception
        return at.session_state["runs"]

    assert tick() == 1, "no move, no rerun"
    room.move(week.id, 2)
    assert tick() == 2, "a move: the whole page runs again"
    ada.run()
    assert "Step 3 of" in ada.sidebar.get("progress")[0].proto.text
    assert "Your teacher moved the class to step 3." in [i.value for i in ada.sidebar.info]
    assert tick() == 1, "followed once: no more reruns"


def test_after_a_reset_no_student_is_pulled_back_to_the_last_move(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    _, ada = student(room, week.id, "Ada")
    room.move(week.id, 2)
    ada.run()
    assert "Step 3 of" in ada.sidebar.get("progress")[0].proto.text
    ada.query_params.update({"lesson": "vae-basics", "step": "5"})
    ada.run()
    room.reset(week.id)
    ada.run()
    assert not ada.exception, ada.exception
    assert "Step 5 of" in ada.sidebar.get("progress")[0].proto.text, "where the student went, not the old move"
    assert not [i for i in ada.sidebar.info if "Your teacher moved" in i.value]
    assert room.class_of(week.id).moved_to is None


@pytest.mark.parametrize("edited", [{"class": "0"}, {"class": "other"}, {}])
def test_the_limits_hold_after_the_url_is_edited(room, run_queue, edited):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    other = room.start_class("Week 4", "vae-basics", "long", 10)
    token, _ = student(room, week.id, "Ada")
    if edited.get("class") == "other":
        edited = {"class": other.id}
    at = browser(token, **edited)
    if edited:
        assert "You are a student of “Week 3” on this server" in texts(at), "the server wins, and says so"
    at.switch_page("pages/train.py").run()
    assert room.learner(token).class_id == week.id
    assert not any(b.label == "Sweep β" for b in at.button) and "train_epochs" not in {w.key for w in at.number_input}
    assert "a tiny run" in texts(at), "the class's run size, shown"
    press_queue(fill_form(at, name="mine", beta=4.0, latent_dim=8))
    press_queue(fill_form(at, name="another"))
    assert "here each learner may have 1 at a time" in at.error[0].value, "a second run refused while one is queued"
    (run,) = run_queue.runs()
    assert (run.config.epochs, run.config.train_size, run.config.beta, run.config.latent_dim) == (1, 512, 4.0, 8)


def test_each_learner_queues_runs_each_in_all_with_seeds_of_their_own(room, run_queue):
    week = room.start_class("Week 3", "vae-basics", "lesson", 2)
    seeds = []
    for name in ("Ada", "Grace"):
        token, at = student(room, week.id, name, page="pages/train.py")
        for n in (1, 2):
            press_queue(fill_form(at, name=f"{name.lower()}-{n}"))
            mine = [run for run in run_queue.runs() if run.owner == token][-1]
            run_queue.stop(mine.id)
            assert run_queue.wait(mine.id, timeout=60)
            seeds.append(mine.config.seed)
            assert f"seed {mine.config.seed}" in texts(at.run())
        press_queue(fill_form(at, name=f"{name.lower()}-3"))
        assert "may queue 2 in all" in at.error[0].value
    assert len(set(seeds)) == 4, "every run its own seed, so a class's runs differ on the Board"
    assert list(at.dataframe(key="train_runs").value["Seed"]) == seeds


def test_reset_archives_the_runs_after_a_confirmation_and_says_how_many(room, run_queue):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    for name in ("Ada", "Grace"):
        _, at = student(room, week.id, name, page="pages/train.py")
        press_queue(fill_form(at, name=name.lower()))
    teacher = browser(page="pages/teacher.py", **{"class": week.id, "teacher": week.secret})
    next(b for b in teacher.button if b.key == "teacher_reset").click().run()
    assert "Its 2 runs are stopped and archived" in teacher.warning[0].value and len(run_queue.runs()) == 2
    next(b for b in teacher.button if b.key == "teacher_reset_yes").click().run()
    assert not teacher.exception, teacher.exception
    assert "2 runs archived" in teacher.success[0].value
    assert run_queue.runs() == [] and [one.name for one in room.learners(week.id)] == ["Ada", "Grace"]


def test_a_server_started_for_a_class_makes_a_bare_url_a_student(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    configure(class_id=str(week.id))
    at = browser()
    assert at.title[0].value == "Join “Week 3”"
    join(at, "Ada")
    assert room.learners(week.id)[0].name == "Ada"
    assert at.title[0].value == "Draw a digit"


def test_a_student_of_a_damaged_class_goes_on_as_a_lone_learner_with_a_notice(room, run_queue):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    token, _ = student(room, week.id, "Ada")
    with sqlite3.connect(run_queue.folder / DATABASE) as db:
        db.execute("UPDATE classes SET run_size = 'huge' WHERE id = ?", (week.id,))
    at = browser(token, page="pages/train.py")
    assert not at.exception, at.exception
    assert any(f"class {week.id}" in w.value and "set aside" in w.value for w in at.sidebar.warning)
    assert "Class:" not in " ".join(c.value for c in at.sidebar.caption), "no badge: a lone learner now"
    assert "Sweep β" in [b.label for b in at.button], "a lone learner's Train page"


def learner_run(room: Classroom, run_queue, name: str) -> str:
    """A run of the learner who joined a class under ``name``, trained to its end; the run's name."""
    token = new_token()
    room.join(token, room.start_class("Week 3", "vae-basics", "lesson", 3).id, name)
    run = run_queue.submit(TrainConfig(**TINY), f"{name.lower()}-1", owner=token)
    assert run_queue.wait(run.id, timeout=120) and run_queue.snapshot(run.id).status == "finished"
    return run.name


def test_a_learners_run_shows_under_their_name_on_the_board(room, run_queue):
    run = learner_run(room, run_queue, "Ada")
    at = browser(page="pages/board.py")  # another learner's browser
    table = at.dataframe(key="board_table").value
    assert list(table.loc[table["Name"] == run, "Owner"]) == ["Ada"]
    at.toggle(key="board_hide_untrained").set_value(False).run()  # a run of seconds: far above the default
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    labels = [a["text"] for a in spec["layout"]["annotations"] if not a["text"].startswith("−ELBO")]
    assert f"{run} · Ada" in labels, "the owner beside the name on the chart"
    hover = " ".join(text for trace in spec["data"] for text in trace.get("hovertext") or [])
    assert f"<b>{run} · Ada</b>" in hover
    at.session_state["board_chart"] = click({"customdata": [f"{run} · Ada"]})
    at.run()
    assert not at.exception, at.exception
    assert f"**{run}**: β = 1" in texts(at), "a click on the labelled point chooses the model"


def test_a_learners_run_shows_under_their_name_in_compares_picker(room, run_queue):
    run = learner_run(room, run_queue, "Grace")
    at = browser(page="pages/compare.py")
    assert f"{run} · Grace" in at.selectbox(key="compare_a").options
    assert "default" in at.selectbox(key="compare_a").options, "a bundled model has no owner to show"


def test_a_class_trains_on_mnist_unless_its_teacher_lets_learners_bring_their_own_images(room, run_queue):
    mnist_only = room.start_class("Week 3", "vae-basics", "short", 3)
    _, at = student(room, mnist_only.id, "Ada", page="pages/train.py")
    assert not [box for box in at.selectbox if box.key == "train_data"], "no dataset choice, no upload"
    own = room.start_class("Week 4", "vae-basics", "short", 3, own_data=True)
    assert room.class_of(own.id).own_data and not room.class_of(mnist_only.id).own_data
    _, at = student(room, own.id, "Grace", page="pages/train.py")
    assert any(option.startswith("Upload a zip") for option in at.selectbox(key="train_data").options)
    at.selectbox(key="train_data").set_value("digits").run()
    press_queue(fill_form(at, name="grace-digits"))
    (run,) = run_queue.runs()
    # The class's "short" size is 20,000 MNIST images: the digits' 1,456 are all trained on.
    assert (run.config.data, run.config.train_size, run.config.epochs) == ("digits", None, RUN_SIZES["short"].epochs)
