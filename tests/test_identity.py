"""A learner's lasting identity (studio/identity.py, AppTest): a browser's first visit gets a token
that a component keeps in a cookie, a visit with that cookie is the same learner (runs starred,
names shown), and the progress record keeps where each lesson was left and the class move the
panel followed. The lesson across a reload: test_lessons.py; in a real browser: test_browser.py."""

import json

import pytest

from classroom.classes import new_token
from classroom.progress import Place, Progress
from harness import TINY
from harness.apptest import run_app
from studio import identity, runs
from vae.config import TrainConfig


@pytest.fixture
def sent_cookie(monkeypatch) -> dict:
    """What the browser's learner cookie holds as it connects, {"token": ...} (AppTest sends no cookies)."""
    sent = {"token": None}
    monkeypatch.setattr(identity, "cookie", lambda: sent["token"])
    return sent


def cookie_keepers(at) -> list:
    """The page's components that set the learner's cookie (others, such as the page script, do not)."""
    return [c for c in at.get("bidi_component") if c.proto.component_name.endswith(identity.COOKIE_KEEPER)]


def test_a_first_visit_gets_a_token_the_browser_keeps_and_a_visit_with_it_is_the_same_learner(
        sent_cookie, checkpoint_dir):
    first = run_app()
    token = first.session_state[identity.TOKEN_KEY]
    assert identity.TOKEN.fullmatch(token)
    (keeper,) = cookie_keepers(first)
    assert json.loads(keeper.proto.json) == {"name": identity.COOKIE, "token": token,
                                             "max_age": identity.COOKIE_MAX_AGE_S}

    sent_cookie["token"] = token
    again = run_app()
    assert again.session_state[identity.TOKEN_KEY] == token and not cookie_keepers(again), \
        "the cookie holds it: nothing to keep"
    assert run_app().session_state[identity.TOKEN_KEY] == token, "another tab: the same learner"


def test_a_reload_keeps_the_star_on_the_learners_runs_and_shows_classmates_by_name(sent_cookie, run_queue):
    room, mine, hers, lone = runs.room(), new_token(), new_token(), new_token()
    room.join(hers, room.start_class("Week 3", "vae-basics", "lesson", 3).id, "Grace")
    for owner, name in ((mine, "mine"), (hers, "hers"), (lone, "lone"), ("", "typed")):
        run_queue.submit(TrainConfig(**TINY), name, owner=owner)
    sent_cookie["token"] = mine
    table = run_app("pages/train.py").dataframe(key="train_runs").value
    assert list(table["Name"]) == ["mine", "hers", "lone", "typed"]
    assert list(table[""]) == ["★", "", "", ""]
    assert list(table["Who"]) == ["you", "Grace", f"learner {lone[:4]}", "command line"]
    for run in run_queue.runs():
        run_queue.stop(run.id)


def test_progress_keeps_where_each_lesson_was_left_and_the_move_followed():
    progress = Progress().at(Place("vae-basics", 4)).at(Place("beta", 1)).at(None).followed(1.5e9)
    assert progress.place is None and progress.left_at == {"vae-basics": 4, "beta": 1}
    assert Progress.from_json(progress.to_json()) == progress and progress.followed_move == 1.5e9
