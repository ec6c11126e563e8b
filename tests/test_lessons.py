"""Lessons as data (vae/lessons.py), and the lesson in the app (AppTest): each step's completion
check ticks from what the learner did, the URL carries the step, class mode hides the expert
controls, and a bad URL or a broken lesson file is explained, never raised."""

import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from harness import BUNDLED_DIR, ROOT, TINY
from harness.apptest import RUN_TIMEOUT_S, canvas_value, click, drawn, fill_form, press_queue, run_app, texts
from studio import learner, resources
from vae import load_checkpoint
from vae.config import TrainConfig
from vae.lessons import CHECKS, LESSON_DIR, PAGES, load_lessons, main, read_lesson

BASICS = read_lesson(LESSON_DIR / "vae-basics.toml")


def lesson_app(lesson: str = "vae-basics", step: int = 1, **params) -> AppTest:
    """The app opened from a lesson's link, ``?lesson=...&step=...`` (and ``params``)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    at.query_params.update({"lesson": lesson, "step": str(step), **params})
    at.run()
    assert not at.exception, at.exception
    return at


def ticked(at: AppTest) -> bool:
    """Whether the lesson panel says the open step is done."""
    return any("Done: on to the next step" in s.value for s in at.success)


# ---------------------------------------------------------------- the files


def test_the_bundled_lessons_parse_and_use_only_known_pages_and_checks():
    lessons, problems = load_lessons()
    assert problems == [] and {"vae-basics", "beta"} <= set(lessons)
    assert len(BASICS.steps) == 10 and len(lessons["beta"].steps) == 4
    for lesson in lessons.values():
        assert all(step.page in PAGES and step.check in CHECKS and step.text for step in lesson.steps)
    assert BASICS.steps[1].times == 2 and BASICS.steps[5].models == ("autoencoder", "default")
    for name in BASICS.steps[5].models:
        assert (BUNDLED_DIR / f"{name}.pt").is_file(), "a compare step names bundled models"


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
    at = lesson_app(step=4)
    assert at.title[0].value == "Latent map"
    assert "**4. Find your digit on the map**" in [m.value for m in at.sidebar.markdown]
    next(b for b in at.button if b.key == "lesson_next").click().run()
    assert not at.exception, at.exception
    assert at.query_params["step"] == "5" and at.query_params["lesson"] == "vae-basics"
    assert at.title[0].value == "Generate"
    next(b for b in at.button if b.key == "lesson_back").click().run()
    assert at.query_params["step"] == "4" and at.title[0].value == "Latent map"

    # Wandering to another page keeps the lesson, and the URL still names its step.
    at.switch_page("pages/draw.py").run()
    assert at.query_params["step"] == "4" and "**4. Find your digit on the map**" in texts(at)


@pytest.mark.parametrize("lesson, step, message", [
    ("no-such-lesson", "1", "a lesson called “no-such-lesson”, which does not exist"),
    ("vae-basics", "12", "has steps 1 to 10; the link asks for step “12”"),
    ("vae-basics", "four", "the link asks for step “four”"),
])
def test_a_bad_lesson_link_says_why_and_lists_the_lessons(lesson, step, message):
    at = lesson_app(lesson, step=step)
    assert message in at.error[0].value
    links = [link.proto.label for link in at.get("page_link")]
    assert "VAE basics (10 steps)" in links and "What β does (4 steps)" in links


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


def test_home_starts_the_lesson_and_makes_a_teachers_link():
    at = run_app()
    at.selectbox(key="home_link_lesson").set_value("beta")
    at.number_input(key="home_link_step").set_value(3).run()
    assert at.code[0].value.endswith("/?lesson=beta&step=3&class=1")
    next(b for b in at.button if b.label == "Start the lesson").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Draw a digit" and at.query_params == {"lesson": "vae-basics", "step": "1"}


# ---------------------------------------------------------------- class mode


def test_class_mode_hides_the_expert_controls_and_other_models(checkpoint_dir):
    shutil.copy(checkpoint_dir / "default.pt", checkpoint_dir / "someone-elses.pt")
    shutil.copy(BUNDLED_DIR / "beta4.pt", checkpoint_dir / "beta4.pt")
    at = lesson_app("vae-basics", step=10, **{"class": "1"})
    assert at.title[0].value == "Train a VAE"
    shown = {w.key for w in at.number_input}
    assert {"train_latent_dim", "train_beta", "train_epochs", "train_train_size"} <= shown
    assert not shown & {"train_batch_size", "train_lr", "train_seed", "train_iw_epochs", "train_iw_samples"}
    assert at.selectbox(key=resources.ACTIVE_KEY).options == ["default", "beta4"]  # not someone-elses
    assert at.query_params["class"] == "1"

    # Without class mode, everything is there.
    at = run_app("pages/train.py")
    assert {"train_batch_size", "train_lr", "train_seed"} <= {w.key for w in at.number_input}
    assert "someone-elses" in at.selectbox(key=resources.ACTIVE_KEY).options


def test_a_run_queued_in_class_mode_keeps_the_recipes_defaults_and_is_listed(checkpoint_dir, run_queue):
    at = lesson_app("vae-basics", step=10, **{"class": "1"})
    fill_form(at, name="mine", train_size=TINY["train_size"], epochs=1)
    press_queue(at)
    run = run_queue.runs()[0]
    assert run_queue.wait(run.id, timeout=120) and run_queue.snapshot(run.id).status == "finished"
    config, recipe = run.config, TrainConfig()
    assert (config.batch_size, config.lr, config.seed, config.iw_epochs) == \
        (recipe.batch_size, recipe.lr, recipe.seed, recipe.iw_epochs)
    assert ticked(at.run())
    assert "mine" in at.selectbox(key=resources.ACTIVE_KEY).options


# ---------------------------------------------------------------- each check ticks from what the learner did


def test_drawing_ticks_step_1(mnist):
    at = lesson_app(step=1)
    assert at.title[0].value == "Draw a digit" and not ticked(at)
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    assert ticked(at.run())


def test_two_new_eps_tick_step_2_and_a_collapsed_dimension_step_3():
    at = lesson_app(step=2)
    assert at.title[0].value == "Inside the model" and not ticked(at)
    for presses in (1, 2):
        next(b for b in at.button if b.key == "inside_new_eps").click().run()
        assert ticked(at) == (presses == 2)
    next(b for b in at.button if b.key == "lesson_next").click().run()
    assert not ticked(at), "the model's largest-KL dimension is shown first: not a collapsed one"
    ckpt = load_checkpoint(resources.default_checkpoint())
    collapsed = int(np.argmin(ckpt.film.kl_per_dim[-1]))
    shown = at.session_state["inside_dimension"]
    at.session_state[f"inside_kl_{shown}"] = click({"customdata": [collapsed]})
    assert ticked(at.run())


def test_a_map_click_ticks_step_4():
    at = lesson_app(step=4)
    assert not ticked(at)
    at.session_state["latent_map_default_pca_2000_30"] = click({"customdata": [1, 0, 7]})  # test #0, a 7
    assert ticked(at.run())


def test_an_interpolation_of_chosen_digits_ticks_step_5_and_the_mixture_step_9():
    at = lesson_app(step=5)
    assert at.title[0].value == "Generate" and not ticked(at), "the page's own two digits do not count"
    at.number_input(key="gen_from").set_value(3).run()
    assert ticked(at)
    at = lesson_app(step=9)
    assert ticked(at), "the mixture's samples are on the page the step opens"


def test_comparing_the_autoencoder_ticks_step_6_and_beta4_step_8():
    at = lesson_app(step=6)
    assert at.title[0].value == "Compare two models" and not ticked(at)
    at.selectbox(key="compare_a").set_value(str(BUNDLED_DIR / "autoencoder.pt")).run()
    assert ticked(at)
    next(b for b in at.button if b.key == "lesson_next").click().run()  # step 7
    next(b for b in at.button if b.key == "lesson_next").click().run()  # step 8, on Compare
    assert not ticked(at)
    at.selectbox(key="compare_a").set_value(str(BUNDLED_DIR / "beta4.pt")).run()
    assert ticked(at)


def test_opening_the_film_inside_epoch_one_ticks_step_7():
    at = lesson_app(step=7)
    assert at.session_state["map_view"] == "film", "the step opens the film"
    assert not ticked(at), "the film opens at epoch 0, before training"
    at.session_state["map_film_chart_0"] = click({"customdata": [2]})  # the frame at 1/8 of epoch 1
    assert ticked(at.run())


def test_finish_on_the_last_step_closes_the_lesson_at_once():
    at = lesson_app("beta", step=4)
    assert next(b for b in at.button if b.key == "lesson_next").label == "Finish"
    next(b for b in at.button if b.key == "lesson_next").click().run()
    assert not at.exception, at.exception
    assert not any(b.key == "lesson_next" for b in at.button) and at.query_params == {}
