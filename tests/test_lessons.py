"""Lessons as data (classroom/lessons.py), and the lesson in the app (AppTest): each step's completion
check ticks from what the learner did (never from opening its page), a step's question is answered
before its task and recorded, Finish shows a recap on Home, the URL carries the step, the server
keeps the learner's place, ticks and answers across a reload (its place wins over an old link's) and
a teacher's move of the class, class mode offers only the class's models, and a bad URL or a broken
lesson file is explained, never raised."""

import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from classroom.classes import new_token
from classroom.lessons import CHECKS, LESSON_DIR, Question, load_lessons, main, read_lesson
from classroom.pages import PAGES
from classroom.progress import Place
from classroom.store import LOCK
from harness import BUNDLED_DIR, ROOT, TINY
from harness.apptest import RUN_TIMEOUT_S, canvas_value, click, drawn, progress_of, run_app, texts
from studio import analysis, identity, learner, resources, runs, views
from vae import load_checkpoint
from vae.config import TrainConfig

BASICS = read_lesson(LESSON_DIR / "vae-basics.toml")


def lesson_app(lesson: str | None = "vae-basics", step: int = 1, token: str | None = None) -> AppTest:
    """The app opened from a lesson's link, ``?lesson=...&step=...`` (a bare URL if ``lesson`` is
    None), in a new browser session of the learner ``token`` (their cookie's; a new learner if None)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    if token is not None:
        at.session_state[identity.TOKEN_KEY] = token
    if lesson is not None:
        at.query_params.update({"lesson": lesson, "step": str(step)})
    at.run()
    assert not at.exception, at.exception
    return at


def ticked(at: AppTest) -> bool:
    """Whether the lesson panel says the open step is done."""
    return any("Done: on to the next step" in s.value for s in at.success)


def press(at: AppTest, key: str) -> AppTest:
    """Press the button ``key`` and run, checked to have raised nothing."""
    next(b for b in at.button if b.key == key).click().run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------- the files


def test_the_bundled_lessons_parse_and_use_only_known_pages_and_checks():
    lessons, problems = load_lessons()
    assert problems == [] and {"vae-basics", "beta"} <= set(lessons)
    assert len(BASICS.steps) == 11 and len(lessons["beta"].steps) == 4
    for lesson in lessons.values():
        assert all(step.page in PAGES and step.check in CHECKS and step.text for step in lesson.steps)
        for name in (name for step in lesson.steps for name in step.models):
            assert (BUNDLED_DIR / f"{name}.pt").is_file(), "a compare step names bundled models"
    assert BASICS.steps[1].times == 2 and BASICS.steps[2].check == "posterior_z"
    assert BASICS.steps[6].models == ("autoencoder", "default") and BASICS.steps[8].models == ("beta1", "beta4")
    questions = [step.question for step in BASICS.steps if step.question is not None]
    assert len(questions) >= 5
    for q in questions:
        assert 2 <= len(q.options) <= 4 and len(q.feedback) == len(q.options) and 1 <= q.answer <= len(q.options)
        assert q.feedback[q.answer - 1].startswith("Right")


STEP = "title = 'x'\nsummary = 'y'\n[[steps]]\ntitle = 'a'\ntext = 'b'\npage = 'draw'\ncheck = 'drawing'\n"
ASKED = "question = 'Will it?'\noptions = ['yes', 'no']\nanswer = 2\nfeedback = ['No: because.', 'Right: because.']\n"


def test_a_question_is_read_with_its_options_answer_and_feedback(tmp_path):
    (tmp_path / "asks.toml").write_text(STEP + ASKED)
    step = read_lesson(tmp_path / "asks.toml").steps[0]
    assert step.question == Question("Will it?", ("yes", "no"), 2, ("No: because.", "Right: because."))
    (tmp_path / "plain.toml").write_text(STEP)
    assert read_lesson(tmp_path / "plain.toml").steps[0].question is None


@pytest.mark.parametrize("text, reason", [
    ("title = 'x'\nsummary = 'y'\n[[steps]]\ntitle = 'a'\n", "does not parse"),  # garbage below
    ("title = 'x'\nsummary = 'y'\n[[steps]]\ntitle = 'a'\ntext = 'b'\npage = 'kitchen'\ncheck = 'drawing'\n",
     "unknown page 'kitchen'"),
    ("title = 'x'\nsummary = 'y'\n[[steps]]\ntitle = 'a'\ntext = 'b'\npage = 'draw'\ncheck = 'telepathy'\n",
     "unknown check 'telepathy'"),
    ("title = 'x'\nsummary = 'y'\n[[steps]]\ntitle = 'a'\ntext = 'b'\npage = 'draw'\ncheck = 'drawing'\ntimes = 3\n",
     "takes no times"),
    ("title = 'x'\n", "lacks 'summary'"),
    ("title = 'x'\nsummary = 'y'\nsteps = []\n", "has no steps"),
    (STEP + ASKED.replace("feedback", "notes"), "takes no notes"),
    (STEP + "question = 'Will it?'\noptions = ['yes', 'no']\n", "question needs question, options, answer, "
     "feedback; it lacks answer, feedback"),
    (STEP + "answer = 1\n", "it lacks question, options, feedback"),
    (STEP + ASKED.replace("['yes', 'no']", "['yes']"), "options must be a list of 2 to 4 answers"),
    (STEP + ASKED.replace("['yes', 'no']", "['a', 'b', 'c', 'd', 'e']"), "options must be a list of 2 to 4"),
    (STEP + ASKED.replace("['yes', 'no']", "'yes or no'"), "options must be a list of 2 to 4"),
    (STEP + ASKED.replace("'no'", "' '"), "step 1's option 2 must be a non-empty string"),
    (STEP + ASKED.replace("answer = 2", "answer = 3"), "answer must be the right option's number, 1 to 2, got 3"),
    (STEP + ASKED.replace("answer = 2", "answer = 0"), "answer must be the right option's number, 1 to 2, got 0"),
    (STEP + ASKED.replace("answer = 2", "answer = 'no'"), "answer must be the right option's number"),
    (STEP + ASKED.replace("answer = 2", "answer = true"), "answer must be the right option's number"),
    (STEP + ASKED.replace(", 'Right: because.'", ""), "feedback must be a list of 2 lines, one per option"),
    (STEP + ASKED.replace("'No: because.'", "3"), "step 1's feedback 1 must be a non-empty string"),
    (STEP + ASKED.replace("'Will it?'", "''"), "step 1's question must be a non-empty string"),
])
def test_a_broken_lesson_file_is_left_out_with_its_reason(tmp_path, text, reason):
    shutil.copy(LESSON_DIR / "beta.toml", tmp_path)
    (tmp_path / "broken.toml").write_text(text + ("[[[" if reason == "does not parse" else ""))
    lessons, problems = load_lessons(tmp_path)
    assert list(lessons) == ["beta"], "the other lessons still work"
    assert len(problems) == 1 and problems[0].startswith("broken.toml") and reason in problems[0]
    assert main([str(tmp_path)]) == 1


# ---------------------------------------------------------------- the URL, and bad links


def test_a_link_opens_its_step_on_its_page_and_next_moves_the_url():
    at = lesson_app(step=5)
    assert at.title[0].value == "Latent map"
    assert "**5. Find your digit on the map**" in [m.value for m in at.sidebar.markdown]
    press(at, "lesson_next")
    assert at.query_params["step"] == "6" and at.query_params["lesson"] == "vae-basics"
    assert at.title[0].value == "Generate"
    press(at, "lesson_back")
    assert at.query_params["step"] == "5" and at.title[0].value == "Latent map"

    # Wandering to another page keeps the lesson, and the URL still names its step.
    at.switch_page("pages/draw.py").run()
    assert at.query_params["step"] == "5" and "**5. Find your digit on the map**" in texts(at)


@pytest.mark.parametrize("lesson, step, message", [
    ("no-such-lesson", "1", "a lesson called “no-such-lesson”, which does not exist"),
    ("vae-basics", "12", "has steps 1 to 11; the link asks for step “12”"),
    ("vae-basics", "four", "the link asks for step “four”"),
])
def test_a_bad_lesson_link_says_why_and_lists_the_lessons(lesson, step, message):
    at = lesson_app(lesson, step=step)
    assert message in at.error[0].value
    links = [link.proto.label for link in at.get("page_link")]
    assert "VAE basics (11 steps)" in links and "What β does (4 steps)" in links


def test_a_broken_lesson_file_leaves_the_app_working_and_says_which(tmp_path, monkeypatch):
    shutil.copy(LESSON_DIR / "vae-basics.toml", tmp_path)
    (tmp_path / "broken.toml").write_text("title = 'x'\n")
    monkeypatch.setattr(learner, "LESSON_DIR", tmp_path)
    learner.lessons.clear()
    try:
        at = run_app()
        assert "A lesson was left out: broken.toml lacks 'summary'" in texts(at)
        assert any(b.label == "Start the lesson" for b in at.button)
    finally:
        learner.lessons.clear()


def test_home_starts_the_lesson():
    at = run_app()
    next(b for b in at.button if b.label == "Start the lesson").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Draw a digit" and at.query_params == {"lesson": "vae-basics", "step": "1"}


# ---------------------------------------------------------------- class mode


def test_class_mode_offers_the_bundled_models_and_the_class_runs_only(checkpoint_dir, run_queue):
    shutil.copy(checkpoint_dir / "default.pt", checkpoint_dir / "someone-elses.pt")
    shutil.copy(BUNDLED_DIR / "beta4.pt", checkpoint_dir / "beta4.pt")
    room, ada, grace = runs.room(), new_token(), new_token()
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    for token, name in ((ada, "Ada"), (grace, "Grace")):
        room.join(token, week.id, name)
    run = run_queue.submit(TrainConfig(**TINY), "graces", owner=grace)
    assert run_queue.wait(run.id, timeout=120) and run_queue.snapshot(run.id).status == "finished"
    at = lesson_app(step=11, token=ada)
    assert at.title[0].value == "Train a VAE"
    assert sorted(at.selectbox(key=resources.ACTIVE_KEY).options) == ["beta4", "default", "graces"]
    assert at.query_params == {"lesson": "vae-basics", "step": "11"}, "the URL carries only the step"

    # A lone learner sees every model.
    assert "someone-elses" in run_app("pages/train.py").selectbox(key=resources.ACTIVE_KEY).options


# ---------------------------------------------------------------- each check ticks from what the learner did


def test_drawing_ticks_step_1(mnist):
    at = lesson_app(step=1)
    assert at.title[0].value == "Draw a digit" and not ticked(at)
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    assert ticked(at.run())


def test_two_new_eps_tick_step_2_and_a_collapsed_dimension_step_4():
    at = lesson_app(step=2)
    assert at.title[0].value == "Inside the model" and not ticked(at)
    for presses in (1, 2):
        press(at, "inside_new_eps")
        assert ticked(at) == (presses == 2)
    at = lesson_app(step=4)
    assert not ticked(at), "the model's largest-KL dimension is shown first: not a collapsed one"
    ckpt = load_checkpoint(resources.default_checkpoint())
    collapsed = int(np.argmin(ckpt.film.kl_per_dim[-1]))
    shown = at.session_state["inside_dimension"]
    at.session_state[f"inside_kl_{shown}"] = click({"customdata": [collapsed]})
    assert ticked(at.run())


def test_a_map_click_ticks_step_5():
    at = lesson_app(step=5)
    assert not ticked(at)
    # The map opens on PCA, so the step says what PCA shows and where neighbours look alike instead.
    assert at.radio(key="map_method").value == "pca"
    assert "The map opens on PCA, a linear" in texts(at) and "similar digits'" in texts(at)
    assert "choose t-SNE under Projection" in texts(at)
    at.session_state["latent_map_default_pca_2000_30"] = click({"customdata": [1, 0, 7]})  # test #0, a 7
    assert ticked(at.run())


def test_an_interpolation_of_chosen_digits_ticks_step_6_and_new_mixture_samples_step_10():
    at = lesson_app(step=6)
    assert at.title[0].value == "Generate" and not ticked(at), "the page's own two digits do not count"
    at.number_input(key="gen_from").set_value(3).run()
    assert ticked(at)
    at = lesson_app(step=10)
    assert at.title[0].value == "Generate" and not ticked(at), "the mixture's samples on the page do not count"
    next(b for b in at.button if b.label == "New seed").click().run()
    assert ticked(at), "new samples drawn from the mixture"
    at = lesson_app(step=10)
    at.number_input(key="gen_seed").set_value(7).run()
    assert ticked(at), "or a seed typed"


def test_the_compare_steps_open_their_two_models_and_tick_once_the_learner_uses_them():
    at = lesson_app(step=7)
    assert at.title[0].value == "Compare two models" and not ticked(at), "opening the pair does not count"
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == \
        (str(BUNDLED_DIR / "autoencoder.pt"), str(BUNDLED_DIR / "default.pt"))
    at.number_input(key="compare_seed").set_value(3).run()
    assert ticked(at)
    press(at, "lesson_next")  # step 8, on the Latent map
    press(at, "lesson_next")  # step 9, on Compare
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == \
        (str(BUNDLED_DIR / "beta1.pt"), str(BUNDLED_DIR / "beta4.pt")) and not ticked(at)
    at.number_input(key="compare_index").set_value(5).run()
    assert ticked(at)

    at = lesson_app("beta", step=1)  # the β lesson's first step: the same pair
    assert at.selectbox(key="compare_a").value == str(BUNDLED_DIR / "beta1.pt") and not ticked(at)
    at.number_input(key="compare_from").set_value(5).run()
    assert ticked(at)


def test_opening_the_film_inside_epoch_one_ticks_step_8():
    at = lesson_app(step=8)
    assert at.session_state["map_view"] == "film", "the step opens the film"
    assert not ticked(at), "the film opens at epoch 0, before training"
    at.session_state["map_film_chart_0"] = click({"customdata": [2]})  # the frame at 1/8 of epoch 1
    assert ticked(at.run())

    at = lesson_app(step=8)
    at.session_state["map_film_frame"] = 2  # the player kept 1/8 of epoch 1 from an earlier visit
    assert not ticked(at.run()), "a frame the player kept is not one the learner opened"
    assert ticked(press(at, "map_film_forward")), "Frame ▶ to 1/4 of epoch 1"


# ---------------------------------------------------------------- questions, and the recap at Finish

QUESTION = "lesson_question_vae-basics_0"  # step 1's question in the lesson panel


def test_a_question_shows_when_its_step_opens_and_answers_are_recorded_but_tick_nothing(mnist, checkpoint_dir):
    at = lesson_app(step=1)
    asked = BASICS.steps[0].question
    radio = at.sidebar.radio(key=QUESTION)
    assert asked.text in radio.label and radio.options == list(asked.options) and radio.value is None
    assert not at.sidebar.warning and not at.sidebar.success, "no feedback before an answer"

    wrong = next(i for i in range(1, len(asked.options) + 1) if i != asked.answer)
    radio.set_value(wrong).run()
    assert asked.feedback[wrong - 1] in at.sidebar.warning[0].value and not ticked(at)
    at.sidebar.radio(key=QUESTION).set_value(asked.answer).run()
    assert asked.feedback[asked.answer - 1] in at.sidebar.success[0].value and not ticked(at)
    assert progress_of(at).answers_of("vae-basics") == {0: (wrong, asked.answer)}, \
        "every choice, in order: the first was wrong; kept by the server"

    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    assert ticked(at.run()), "the step ticks on its task"
    at.query_params["step"] = "11"
    at.run().query_params["step"] = "1"
    assert at.run().sidebar.radio(key=QUESTION).value == asked.answer, "back at the step, the last answer shows"


def test_finish_shows_the_recap_on_home_and_start_again_clears_the_lesson(mnist, checkpoint_dir):
    at = lesson_app(step=1)
    at.sidebar.radio(key=QUESTION).set_value(BASICS.steps[0].question.answer)
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    token = at.session_state[identity.TOKEN_KEY]
    runs.room().save(token, progress_of(at).note("gap", 1.234, "latent2d"))  # as Inside notes it
    at.run()
    at.query_params["step"] = "11"
    assert next(b for b in at.run().button if b.key == "lesson_next").label == "Finish"
    press(at, "lesson_next")
    assert at.title[0].value == "VAE Studio" and at.query_params == {}, "Finish goes Home and closes the lesson"
    shown = texts(at)
    assert "What you did**: 1 of 11 steps" in shown and "✓ 1. Draw a digit" in shown
    assert "○ 2. Look inside (not done)" in shown
    questions = sum(step.question is not None for step in BASICS.steps)
    assert f"1 of {questions} right on the first try" in shown
    e = analysis.explanation(resources.active(), at.session_state[analysis.LAST_DRAWING_KEY]["image"], 0)
    assert f"= {e.loss:.1f} nats" in shown and f"BCE {e.bce:.1f} + KL {e.kl:.1f}" in shown, "their digit's −ELBO"
    assert "under latent2d, the ELBO fell 1.23 nats short of log p(x)" in shown, "and the gap Inside noted"

    press(at, "recap_again")
    assert at.title[0].value == "Draw a digit" and at.query_params == {"lesson": "vae-basics", "step": "1"}
    assert at.sidebar.radio(key=QUESTION).value is None and progress_of(at).answers_of("vae-basics") == {}, \
        "its answers are gone"
    assert not ticked(at), "its ticks are gone: Draw showing the drawing it kept is not a new drawing"
    assert progress_of(at).place == Place("vae-basics", 0) and views.RECAP_KEY not in at.session_state


def test_finish_on_the_last_step_of_a_lesson_closes_it_and_the_recap_can_be_dismissed(checkpoint_dir):
    at = lesson_app("beta", step=4)
    assert next(b for b in at.button if b.key == "lesson_next").label == "Finish"
    press(at, "lesson_next")
    assert not any(b.key == "lesson_next" for b in at.button) and at.query_params == {}
    assert any("You finished “What β does”" in h.value for h in at.header)
    assert "Draw a digit, and this recap gives its numbers" in [link.proto.label for link in at.get("page_link")]
    press(at, "recap_dismiss")
    assert not any("You finished" in h.value for h in at.header)


# ---------------------------------------------------------------- the server keeps the learner


def test_a_reload_brings_back_the_step_its_ticks_and_answers_and_another_browser_is_another_learner(
        mnist, checkpoint_dir):
    at = lesson_app(step=1)
    asked = BASICS.steps[0].question
    at.sidebar.radio(key=QUESTION).set_value(asked.answer)
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    assert ticked(at.run())
    press(at, "lesson_next")

    again = lesson_app(None, token=at.session_state[identity.TOKEN_KEY])  # reloaded, at a bare URL
    assert again.title[0].value == "Inside the model" and again.query_params == \
        {"lesson": "vae-basics", "step": "2"}, "back on the step's page, the URL naming it"
    press(again, "lesson_back")
    assert ticked(again) and again.sidebar.radio(key=QUESTION).value == asked.answer
    assert "Step 1 of 11 · 1 done" in again.sidebar.get("progress")[0].proto.text

    other = lesson_app(None)
    assert other.title[0].value == "VAE Studio" and not any(b.key == "lesson_next" for b in other.button)


def test_on_a_new_browser_session_the_servers_place_wins_over_the_url(checkpoint_dir):
    token = lesson_app(step=5).session_state[identity.TOKEN_KEY]
    at = lesson_app(step=2, token=token)  # an older link, opened again
    assert at.title[0].value == "Latent map" and at.query_params["step"] == "5"
    assert "**5. Find your digit on the map**" in [m.value for m in at.sidebar.markdown]

    at.query_params["step"] = "6"  # a link followed within the browser session moves the learner
    assert at.run().title[0].value == "Generate"
    assert progress_of(at).place == Place("vae-basics", 5)


def test_a_class_move_is_followed_once_with_a_notice(run_queue):
    room, token = runs.room(), new_token()
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    room.join(token, week.id, "Ada")
    at = lesson_app(step=1, token=token)
    room.move(week.id, 2)
    at.run()
    assert at.title[0].value == "Inside the model" and at.query_params["step"] == "3"
    assert [i.value for i in at.sidebar.info] == ["Your teacher moved the class to step 3."]

    press(at, "lesson_back")  # the move is followed once: the learner may go back
    assert f"**2. {BASICS.steps[1].title}**" in [m.value for m in at.sidebar.markdown] and not at.sidebar.info
    assert lesson_app(None, token=token).query_params["step"] == "2", "a reload keeps where they went since"


def test_where_the_store_cannot_be_used_a_lone_learner_keeps_their_lesson_in_the_browser(checkpoint_dir, mnist):
    (checkpoint_dir / ".runs" / ".lock").mkdir(parents=True)  # as tests/test_app_queue.py blocks the store
    (checkpoint_dir / LOCK).mkdir(parents=True)
    at = lesson_app(step=1)
    at.sidebar.radio(key=QUESTION).set_value(BASICS.steps[0].question.answer)
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    assert ticked(at.run()) and at.sidebar.success, "the answer's feedback, and the tick"
    press(at, "lesson_next")
    assert at.title[0].value == "Inside the model" and at.query_params["step"] == "2"
    assert not at.exception and not at.error
    assert [w.value[:30] for w in at.warning] == ["Runs cannot be queued here now"], "the sidebar's one warning"
