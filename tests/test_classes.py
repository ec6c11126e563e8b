"""Classes and learners on the server (classroom/classes.py, classroom/progress.py): names, progress
kept across a restart, the teacher's moves and resets, the limits, damaged records, and a store
of an earlier version brought up to date."""

import json
import sqlite3
import threading
from collections import Counter

import pytest

from classroom.classes import ClassError, Classroom, check_name, new_token
from classroom.lessons import Step
from classroom.progress import Place, Progress
from classroom.queue import QueueError, RunQueue
from classroom.store import DATABASE, SCHEMA
from harness import TINY
from vae.config import TrainConfig


@pytest.fixture
def queue(tmp_path):
    with RunQueue(tmp_path) as queue:
        yield queue


@pytest.fixture
def room(queue):
    return Classroom(queue)


def test_a_learner_is_kept_with_their_progress_across_a_restart(tmp_path):
    token = new_token()
    with RunQueue(tmp_path) as queue:
        room = Classroom(queue)
        week = room.start_class("Week 3", "vae-basics", "lesson", runs_each=3)
        room.join(token, week.id, "  Ada   Lovelace ")
        progress = (room.learner(token).progress.did("drawing").did("compare", ["autoencoder", "default"])
                    .answer("vae-basics", 0, 1).answer("vae-basics", 0, 2).note("gap", 1.5, "default")
                    .at(Place("vae-basics", 3)))
        room.save(token, progress)
    with RunQueue(tmp_path) as queue:
        back = Classroom(queue).learner(token)
    assert back.name == "Ada Lovelace" and back.class_id == week.id
    assert back.progress == progress and back.progress.place == Place("vae-basics", 3)
    assert back.progress.answers_of("vae-basics") == {0: (1, 2)}
    compare = Step("Compare", "text", "compare", "compare", models=("default", "autoencoder"))
    assert back.progress.step_done("vae-basics", compare)


def test_names_are_unique_in_a_class_and_checked(queue, room):
    first, second = (room.start_class(name, "vae-basics", "lesson", 3) for name in ("A", "B"))
    room.join(new_token(), first.id, "Grace")
    with pytest.raises(ClassError, match="already called 'Grace'"):
        room.join(new_token(), first.id, "Grace")
    assert room.join(new_token(), second.id, "Grace").name == "Grace", "another class may have its own Grace"
    stranger = new_token()
    assert room.name_of(stranger) is None and room.learners(first.id)[0].name == "Grace"
    with sqlite3.connect(queue.folder / DATABASE) as db:
        assert db.execute("SELECT count(*) FROM learners WHERE token = ?", (stranger,)).fetchone() == (0,)
    for bad, said in (("   ", "Please type a name"), ("x" * 41, "at most 40 characters"),
                      ("<script>", "letters, digits"), ("a\x00b", "letters, digits")):
        with pytest.raises(ClassError, match=said):
            room.join(new_token(), first.id, bad)
    assert check_name("Zoë  O'Neil-Smith") == "Zoë O'Neil-Smith"
    with pytest.raises(ClassError, match="There is no class 99"):
        room.join(new_token(), 99, "Alan")


def test_two_learners_choosing_one_name_at_once_get_one_each(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    results, start = [], threading.Barrier(8)

    def join():
        start.wait()
        try:
            results.append(room.join(new_token(), week.id, "Sam").name)
        except ClassError as e:
            results.append(str(e))

    threads = [threading.Thread(target=join) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("Sam") == 1 and len(room.learners(week.id)) == 1


def test_the_teachers_secret_and_a_move(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    other = room.start_class("Week 4", "beta", "short", 1)
    assert room.is_teacher(week.id, week.secret) and not room.is_teacher(week.id, other.secret)
    assert not room.is_teacher(week.id, "") and len(week.secret) >= 20
    room.move(week.id, 2)
    moved = room.class_of(week.id)
    assert moved.moved_to == 2 and moved.moved_at > 0 and room.class_of(other.id).moved_to is None
    with pytest.raises(ClassError, match="run size"):
        room.start_class("Week 5", "vae-basics", "huge", 3)


def test_limits_hold_per_learner_one_at_a_time_and_n_in_all(queue):
    config = TrainConfig(**{**TINY, "epochs": 50})
    queue.submit(config, "ann-1", owner="ann", limit_per_owner=1, total_per_owner=2)
    with pytest.raises(QueueError, match="at a time"):
        queue.submit(config, "ann-2", owner="ann", limit_per_owner=1, total_per_owner=2)
    queue.stop(queue.runs()[0].id)
    assert queue.wait(queue.runs()[0].id, timeout=60)
    queue.submit(config, "ann-2", owner="ann", limit_per_owner=1, total_per_owner=2)
    queue.stop(queue.runs()[1].id)
    assert queue.wait(queue.runs()[1].id, timeout=60)
    with pytest.raises(QueueError, match="may queue 2 in all"):
        queue.submit(config, "ann-3", owner="ann", limit_per_owner=1, total_per_owner=2)


def test_a_reset_archives_the_class_runs_and_clears_progress_keeping_names(queue, room, tmp_path):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    ann, bob = new_token(), new_token()
    room.join(ann, week.id, "Ann")
    room.join(bob, week.id, "Bob")
    room.save(ann, room.learner(ann).progress.did("drawing").at(Place("vae-basics", 4)))
    done = queue.submit(TrainConfig(**TINY), "ann-run", owner=ann)
    assert queue.wait(done.id, timeout=120) and (tmp_path / "ann-run.pt").is_file()
    training = queue.submit(TrainConfig(**{**TINY, "epochs": 50}), "bob-run", owner=bob)
    mine = queue.submit(TrainConfig(**TINY), "outside", owner="someone else")
    assert room.reset(week.id) == 2
    assert {run.name for run in queue.runs()} == {"outside"}, "the class's runs leave the queue, others stay"
    assert not (tmp_path / "ann-run.pt").exists()
    archived = list((tmp_path / ".classroom" / "archive").glob("*/ann-run.pt"))
    assert len(archived) == 1, "kept, not deleted"
    assert [(who.name, who.progress) for who in room.learners(week.id)] == [("Ann", Progress()), ("Bob", Progress())]
    again = queue.submit(TrainConfig(**TINY), "ann-run", owner=ann)  # the name is free again
    assert queue.wait(again.id, timeout=120) and queue.wait(mine.id, timeout=120)
    assert training.id not in {run.id for run in queue.runs()}


def test_a_damaged_progress_record_is_set_aside_and_the_learner_starts_afresh(tmp_path):
    token = new_token()
    with RunQueue(tmp_path) as queue:
        room = Classroom(queue)
        week = room.start_class("Week 3", "vae-basics", "lesson", 3)
        room.join(token, week.id, "Ann")
    with sqlite3.connect(tmp_path / DATABASE) as db:
        db.execute("UPDATE learners SET progress = ? WHERE token = ?", ('{"events": 7}', token))
    with RunQueue(tmp_path) as queue:
        learner = Classroom(queue).learner(token)
        assert learner.name == "Ann" and learner.progress == Progress()
        assert any("learner Ann's progress" in notice and "set aside" in notice for notice in queue.notices)
    with sqlite3.connect(tmp_path / DATABASE) as db:
        assert db.execute("SELECT record FROM set_aside").fetchall() == [('{"events": 7}',)]


def test_a_move_is_followed_once_and_a_reset_forgets_it(room):
    week = room.start_class("Week 3", "vae-basics", "lesson", 3)
    ann = new_token()
    room.join(ann, week.id, "Ann")
    progress = room.learner(ann).progress
    assert not room.class_of(week.id).moves(progress), "never moved"
    room.move(week.id, 2)
    moved = room.class_of(week.id)
    assert moved.moves(progress) and not moved.moves(progress.followed(moved.moved_at)), "followed once"
    room.save(ann, progress.followed(moved.moved_at).at(Place("vae-basics", 4)))
    room.reset(week.id)
    after = room.class_of(week.id)
    assert (after.moved_to, after.moved_at) == (None, 0.0)
    assert not after.moves(room.learner(ann).progress), "a cleared panel is not pulled back to the old move"
    room.move(week.id, 1)
    assert room.class_of(week.id).moves(room.learner(ann).progress), "the next move is followed"


@pytest.mark.parametrize("column, value", [("run_size", "huge"), ("runs_each", 0), ("runs_each", "three"),
                                           ("secret", ""), ("name", "<b>Week</b>"), ("moved_to", -1),
                                           ("created_at", "yesterday"), ("own_data", 2)])
def test_a_damaged_class_is_set_aside_once_and_its_students_are_kept(tmp_path, column, value):
    token = new_token()
    with RunQueue(tmp_path) as queue:
        room = Classroom(queue)
        week = room.start_class("Week 3", "vae-basics", "lesson", 3)
        other = room.start_class("Week 4", "vae-basics", "short", 2)
        room.join(token, week.id, "Ann")
    with sqlite3.connect(tmp_path / DATABASE) as db:
        db.execute(f"UPDATE classes SET {column} = ? WHERE id = ?", (value, week.id))
    with RunQueue(tmp_path) as queue:
        room = Classroom(queue)
        assert [c.id for c in room.classes()] == [other.id]
        assert [c.id for c in room.classes()] == [other.id], "read again"
        with pytest.raises(ClassError, match=f"no class {week.id}"):
            room.class_of(week.id)
        assert room.learner(token).name == "Ann", "the student is kept, in no class the server has"
        (notice,) = [n for n in queue.notices if f"class {week.id}" in n]
        assert "damaged" in notice and "set aside" in notice and week.secret not in notice
    with sqlite3.connect(tmp_path / DATABASE) as db:
        ((source, record),) = db.execute("SELECT source, record FROM set_aside").fetchall()
    assert source == f"classes {week.id}" and json.loads(record)[column] == value, "kept as it was"


def test_a_store_of_the_first_version_is_brought_up_to_date(tmp_path):
    (tmp_path / DATABASE).parent.mkdir()
    with sqlite3.connect(tmp_path / DATABASE) as db:
        db.executescript(SCHEMA[0] + "; PRAGMA user_version = 1;")
        db.execute("INSERT INTO runs VALUES (5, 'old', 'ann', 'stopped', 'Stopped.', 0, 0, 1.0, 2.0, 3.0, ?, '[]')",
                   (json.dumps(TrainConfig(**TINY).__dict__),))
    with RunQueue(tmp_path) as queue:
        assert [(run.id, run.name, run.status) for run in queue.runs()] == [(5, "old", "stopped")]
        assert queue.submit(TrainConfig(**TINY), "new").id == 6, "ids go on from the old ones"
        with pytest.raises(QueueError, match="was queued before"):
            queue.submit(TrainConfig(**TINY), "old")
    with sqlite3.connect(tmp_path / DATABASE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)


def test_progress_ticks_a_step_only_after_a_restart_if_done_again():
    step = Step("Draw", "text", "draw", "drawing")
    progress = Progress().did("drawing")
    assert progress.step_done("vae-basics", step)
    again = progress.restart("vae-basics")
    assert not again.step_done("vae-basics", step) and again.step_done("beta", step)
    assert again.did("drawing").step_done("vae-basics", step)
    assert Progress.from_json(again.to_json()) == again
    assert again.events == Counter({("drawing", None): 1})
