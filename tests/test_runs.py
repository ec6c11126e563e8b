"""The queue of runs (classroom/queue.py): order, names, the per-learner limit, its records across a
restart (a new queue on the same folder), resume, damage, stop; executed here and on a local Ray
instance (the tests named ``ray``)."""

import contextlib
import json
import sqlite3
import threading
from dataclasses import asdict

import pytest
import ray

import vae.train
from classroom.queue import QueueError, RunQueue
from classroom.ray_executor import LOST
from classroom.store import DATABASE, FOLDER, LOCK
from harness import TINY, train_watching
from harness.wait import until
from vae import load_checkpoint
from vae.config import TrainConfig
from vae.events import EpochEvent, StepEvent
from vae.train import TrainResult


class Trainer:
    """Stands in for vae.train.train where only the queue's bookkeeping is under test: records the
    runs in the order they start, and holds each until its stop flag or ``release``."""

    def __init__(self):
        self.started = []
        self.released = threading.Event()

    def __call__(self, config, path, *, stop, callback, data, resume):
        self.started.append(path.stem)
        while not (stop.wait(0.05) or self.released.is_set()):
            pass
        if stop.is_set():
            return TrainResult("stopped", "Stopped by request.", None)
        return TrainResult("finished", "Finished.", None)


TINY_FLAGS = [f"--{key.replace('_', '-')}={value}" for key, value in TINY.items()]  # vae.train's
EPOCH = {"epoch": 1, "seconds": 1.5, "img_per_s": 340.0, "train": {"loss": 210.0, "bce": 190.0, "kl": 20.0}, "val": {},
         "test": {"loss": 200.0, "bce": 180.0, "kl": 20.0}}  # an epoch of a record's history


def legacy_record(run_id, name, status="queued", epochs=()):
    """A run's record as earlier versions wrote it, one JSON file per run in .runs/."""
    return {"id": run_id, "name": name, "owner": "alice", "config": asdict(TrainConfig(**TINY)), "status": status,
            "message": "", "epoch": len(epochs), "has_checkpoint": status == "finished", "queued_at": 1.0e9,
            "started_at": 0.0, "ended_at": 0.0, "history_epochs": list(epochs)}


def stored(folder):
    """(id, name) of each run in the folder's store."""
    with contextlib.closing(sqlite3.connect(folder / DATABASE)) as db:
        return list(db.execute("SELECT id, name FROM runs ORDER BY id"))


def statuses(queue):
    return {run.name: run.status for run in queue.runs()}


def test_runs_start_first_queued_first_run(tmp_path):
    trainer = Trainer()
    with RunQueue(tmp_path, workers=2, train_fn=trainer) as queue:
        runs = [queue.submit(TrainConfig(**TINY), name) for name in "abcde"]
        assert statuses(queue) == {"a": "running", "b": "running", "c": "queued", "d": "queued", "e": "queued"}
        trainer.released.set()
        assert all(queue.wait(run.id, timeout=30) for run in runs)
    assert trainer.started == list("abcde")
    assert set(statuses(queue).values()) == {"finished"}
    assert queue.where == "on this server, 2 at a time"


def test_a_name_already_taken_is_refused_before_anything_is_queued(tmp_path):
    (tmp_path / "kept.pt").write_bytes(b"a model")
    with RunQueue(tmp_path, train_fn=Trainer()) as queue:
        queue.submit(TrainConfig(**TINY), "mine", owner="alice")
        with pytest.raises(QueueError, match="A run named 'mine' is already in the queue"):
            queue.submit(TrainConfig(**TINY), "mine", owner="bob")
        with pytest.raises(QueueError, match="A model named 'kept' already exists"):
            queue.submit(TrainConfig(**TINY), "kept")
        with pytest.raises(QueueError, match="letters, digits"):
            queue.submit(TrainConfig(**TINY), "../outside")
        with pytest.raises(ValueError, match="beta must be"):
            queue.submit(TrainConfig(**{**TINY, "beta": -1.0}), "negative")
        sweep = [("sweep-beta1", TrainConfig(**TINY)), ("mine", TrainConfig(**TINY))]
        with pytest.raises(QueueError, match="A run named 'mine' is already in the queue"):
            queue.submit_all(sweep, owner="bob")  # a sweep: all its runs or none
        with pytest.raises(QueueError, match="given once"):
            queue.submit_all([sweep[0], sweep[0]], owner="bob")
        assert [run.name for run in queue.runs()] == ["mine"]
    assert stored(tmp_path) == [(1, "mine")]


def test_a_learner_may_have_one_run_at_a_time_in_class_mode(tmp_path):
    with RunQueue(tmp_path, train_fn=Trainer()) as queue:
        first = queue.submit(TrainConfig(**TINY), "alice-1", owner="alice", limit_per_owner=1)
        with pytest.raises(QueueError, match=r"You already have 1 run\(s\) in the queue \(alice-1\)"):
            queue.submit(TrainConfig(**TINY), "alice-2", owner="alice", limit_per_owner=1)
        queue.submit(TrainConfig(**TINY), "bob-1", owner="bob", limit_per_owner=1)  # queued behind alice's
        queue.submit(TrainConfig(**TINY), "teacher-1", owner="alice")  # no limit outside class mode
        queue.stop(first.id)
        assert queue.wait(first.id, timeout=30)
        with pytest.raises(QueueError, match="You already have 1 run"):  # teacher-1 is still queued
            queue.submit(TrainConfig(**TINY), "alice-2", owner="alice", limit_per_owner=1)
        assert queue.submit(TrainConfig(**TINY), "alice-2", owner="alice", limit_per_owner=2).owner == "alice"


def test_a_new_queue_on_the_folder_finds_the_runs_and_starts_a_cut_off_one_again(tmp_path):
    with RunQueue(tmp_path, train_fn=Trainer()) as first:
        for name, owner in (("a", "alice"), ("b", "bob"), ("c", "carol")):
            first.submit(TrainConfig(**{**TINY, "beta": 2.0}), name, owner=owner)
        with pytest.raises(QueueError, match="Another process"):  # one server per folder
            RunQueue(tmp_path)
    # "a" was running when the queue closed: cut off, as by a server restart, with no .resume file.
    trainer = Trainer()
    with RunQueue(tmp_path, train_fn=trainer) as second:
        runs = second.runs()
        assert [(run.id, run.name, run.owner, run.config.beta) for run in runs] == [
            (1, "a", "alice", 2.0), (2, "b", "bob", 2.0), (3, "c", "carol", 2.0)]
        assert statuses(second) == {"a": "running", "b": "queued", "c": "queued"}
        second.stop(runs[0].id)
        assert second.wait(runs[0].id, timeout=30)
        assert second.snapshot(runs[0].id).message == (
            "Started again from the beginning when the server restarted (no .resume file on this server). "
            "Stopped by request.")
        assert second.snapshot(runs[1].id).status == "running"  # the next in line
    assert trainer.started == ["a", "b"]


def test_a_run_cut_off_by_a_restart_resumes_from_its_sidecar(tmp_path, mnist, datasets):
    config = TrainConfig(**{**TINY, "epochs": 2})
    with RunQueue(tmp_path, train_fn=Trainer()) as first:
        first.submit(config, "cut", owner="alice")  # its record says running when the queue closes
    # What the cut-off run had written: its files after epoch 1.
    stop = threading.Event()
    vae.train.train(config, tmp_path / "cut.pt", stop=stop, data=mnist,
                    callback=lambda event: isinstance(event, EpochEvent) and stop.set())
    epoch_1 = load_checkpoint(tmp_path / "cut.pt").history.epochs[0]
    with RunQueue(tmp_path, datasets=datasets) as second:
        [run] = second.runs()
        assert second.wait(run.id, timeout=120)
        run = second.snapshot(run.id)
    assert run.status == "finished" and run.message.startswith(
        "Resumed after epoch 1 (from its .resume file) when the server restarted. Finished 2 epochs")
    epochs = load_checkpoint(tmp_path / "cut.pt").history.epochs
    assert [e.epoch for e in epochs] == [1, 2] and epochs[0] == epoch_1  # continued, not begun again
    assert [e.epoch for e in run.history.epochs] == [1, 2]


def test_the_json_records_of_earlier_versions_move_into_the_store_once(tmp_path):
    finished = legacy_record(8, "b", "finished", [EPOCH])
    files = {"000001.json": legacy_record(1, "a"), "000002.json": '{"id": 2, "name": "b", "sta',  # cut short
             "000003.json": legacy_record(3, "../../elsewhere"), "000008.json": finished,
             "000009.json": finished,  # a copy: run 8 would train again at every start, into b.pt
             "000010.json": legacy_record(10, "a")}  # two runs would train into a.pt
    (tmp_path / ".runs").mkdir()
    for name, record in files.items():
        (tmp_path / ".runs" / name).write_text(record if isinstance(record, str) else json.dumps(record))
    with RunQueue(tmp_path, train_fn=Trainer()) as queue:
        assert [(run.id, run.name, run.status) for run in queue.runs()] == [(1, "a", "running"), (8, "b", "finished")]
        assert queue.runs()[1].history.epochs[0].test.loss == EPOCH["test"]["loss"]
        [notice] = queue.notices
        assert notice.startswith("The queue's records 000002.json (damaged: ")
        assert notice.endswith("000003.json (damaged: not a run's name: '../../elsewhere'), 000009.json (its id is 8), "
                               f"000010.json (a second run named 'a') in {tmp_path / '.runs'} are set aside (kept in "
                               f"{tmp_path / '.runs.migrated'}); the rest of the queue is kept.")
    assert not (tmp_path / ".runs").exists(), "imported once"
    assert sorted(p.name for p in (tmp_path / ".runs.migrated").iterdir()) == sorted(files), "and kept as a backup"
    with RunQueue(tmp_path, train_fn=Trainer()) as again:
        assert [run.name for run in again.runs()] == ["a", "b"] and again.notices == []
        with pytest.raises(QueueError, match="A run named 'b' was queued before \\(finished\\)"):
            again.submit(TrainConfig(**TINY), "b")


def test_a_record_that_cannot_be_read_is_set_aside_and_the_rest_of_the_queue_kept(tmp_path):
    with RunQueue(tmp_path, train_fn=Trainer()) as first:
        for name in "abc":
            first.submit(TrainConfig(**TINY), name)
    no_loss = {**EPOCH, "test": {"bce": 80.0, "kl": 20.0}}  # the runs table shows each run's last test loss
    with contextlib.closing(sqlite3.connect(tmp_path / DATABASE)) as db, db:
        db.execute("UPDATE runs SET status = 'finished', history_epochs = ? WHERE name = 'b'", (json.dumps([no_loss]),))
        db.execute("UPDATE runs SET config = ? WHERE name = 'c'", (json.dumps({"colour": "blue"}),))
    with RunQueue(tmp_path, train_fn=Trainer()) as second:
        assert [run.name for run in second.runs()] == ["a"]
        [notice] = second.notices
        assert notice.startswith("The queue's records of run 2 (its epoch 1 has no 'loss'), run 3 (")
        assert notice.endswith(f"'colour') in {tmp_path / DATABASE} were damaged and are set aside; the rest of the "
                               "queue is kept.")
        assert second.submit(TrainConfig(**TINY), "d").id == 4  # no id is given twice
    assert stored(tmp_path) == [(1, "a"), (4, "d")]
    with contextlib.closing(sqlite3.connect(tmp_path / DATABASE)) as db:
        assert [row[0] for row in db.execute("SELECT source FROM set_aside")] == ["runs 2", "runs 3"]


def test_a_model_that_took_a_queued_runs_name_is_never_trained_over(tmp_path, datasets):
    taken = {}

    def others_write_race_and_default(event):  # while "first" trains, "race" and "default" wait
        if isinstance(event, EpochEvent) and not taken:
            assert vae.train.main(["--out", str(tmp_path / "race.pt"), "--no-film", *TINY_FLAGS]) == 0
            (tmp_path / "default.pt").write_bytes(b"the bundled model")
            taken.update({name: (tmp_path / f"{name}.pt").read_bytes() for name in ("race", "default")})

    with RunQueue(tmp_path, datasets=datasets, train_fn=train_watching(others_write_race_and_default)) as queue:
        runs = [queue.submit(TrainConfig(**TINY), name) for name in ("first", "race", "default")]
        assert all(queue.wait(run.id, timeout=120) for run in runs)
        first, race, default = (queue.snapshot(run.id) for run in runs)
    assert first.status == "finished"
    for run in (race, default):
        assert (run.status, run.checkpoint) == ("failed", None)
        assert run.message == (f"A model named {run.name!r} appeared in the checkpoint folder after this run was "
                               "queued; it is left as it is, and this run did not start. Queue it again under "
                               "another name.")
        assert (tmp_path / f"{run.name}.pt").read_bytes() == taken[run.name]


def test_a_runs_first_write_never_replaces_a_file_that_took_its_name_meanwhile(tmp_path, datasets):
    def another_writes_race(event):
        if isinstance(event, StepEvent) and event.step == 1:
            (tmp_path / "race.pt").write_bytes(b"another run's model")

    with RunQueue(tmp_path, datasets=datasets, train_fn=train_watching(another_writes_race)) as queue:
        run = queue.submit(TrainConfig(**TINY), "race")
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
    assert (run.status, run.checkpoint) == ("failed", None)
    assert run.message == ("A model named 'race' appeared in the checkpoint folder while this run trained; it is left "
                           "as it is, and this run's model was not kept. Queue it again under another name.")
    assert (tmp_path / "race.pt").read_bytes() == b"another run's model"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != FOLDER) == ["race.pt"]


# Root, as the tests may run, writes whatever a file's permissions say, so each folder here is
# spoilt by a file where a folder must be, or the other way round.
@pytest.mark.parametrize("spoil", [
    lambda folder: folder.parent.write_text("a file where a folder should be"),
    lambda folder: (folder / DATABASE).mkdir(parents=True),
    lambda folder: (folder / LOCK).mkdir(parents=True),
    lambda folder: (folder / FOLDER).mkdir(parents=True) or (folder / DATABASE).write_text("not a database " * 100),
], ids=["below-a-file", "database-a-folder", "lock-a-folder", "database-not-one"])
def test_a_folder_that_cannot_hold_the_queue_is_a_message(tmp_path, spoil):
    folder = tmp_path / "parent" / "checkpoints"
    spoil(folder)
    with pytest.raises(QueueError) as refused:
        RunQueue(folder, train_fn=Trainer())
    assert str(refused.value).startswith(f"The queue of runs cannot be kept in {folder} (")
    assert str(refused.value).endswith(f"Let this server's user write there (the folder and its {FOLDER}/), or use "
                                       "another checkpoint folder (VAE_CHECKPOINT_DIR, or a sweep's --out), then "
                                       "start again.")


def test_stop_takes_a_queued_run_out_and_ends_a_running_one(tmp_path):
    trainer = Trainer()
    with RunQueue(tmp_path, train_fn=trainer) as queue:
        running, queued = (queue.submit(TrainConfig(**TINY), name) for name in ("running", "queued"))
        queue.stop(queued.id)
        assert queue.wait(queued.id, timeout=0)
        assert queue.snapshot(queued.id).message == "Taken out of the queue before it started."
        queue.stop(running.id)
        assert queue.snapshot(running.id).status == "stopping"
        assert queue.wait(running.id, timeout=30) and queue.snapshot(running.id).status == "stopped"
    assert trainer.started == ["running"]
    with RunQueue(tmp_path, train_fn=trainer) as again:
        assert statuses(again) == {"running": "stopped", "queued": "stopped"}


def test_a_real_run_lands_its_checkpoint_and_keeps_only_its_row_once_ended(tmp_path, datasets):
    seen = []

    def look_after_each_epoch(event):
        if isinstance(event, EpochEvent):
            seen.append(queue.runs()[0])

    with RunQueue(tmp_path, datasets=datasets, train_fn=train_watching(look_after_each_epoch)) as queue:
        run = queue.submit(TrainConfig(**TINY), "real", owner="alice")
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
    [live] = seen
    assert live.status == "running" and live.weights_epoch == 1 and live.film is not None
    assert live.reconstructions.shape == (2, 10, 1, 28, 28) and len(live.history.steps) == 4
    assert run.status == "finished" and run.checkpoint == tmp_path / "real.pt"
    assert load_checkpoint(run.checkpoint).metrics.epoch == 1
    assert (run.film, run.weights, run.reconstructions, run.history.steps) == (None, None, None, ())
    assert run.history.epochs[0].test == live.history.epochs[0].test
    with RunQueue(tmp_path) as again:  # and so after a restart
        [kept] = again.runs()
        assert (kept.status, kept.owner, kept.checkpoint) == ("finished", "alice", run.checkpoint)
        assert kept.history.epochs[0].test == run.history.epochs[0].test


def test_an_unreachable_ray_cluster_leaves_the_runs_on_this_server(tmp_path):
    with RunQueue(tmp_path, ray_address="127.0.0.1:9", train_fn=Trainer()) as queue:
        assert queue.where == "on this server"
        [notice] = queue.notices
        assert notice.startswith("The Ray cluster at 127.0.0.1:9 could not be reached (nothing answers at")
        assert notice.endswith("; runs execute on this server.")


# ---------------------------------------------------------------- on a local Ray instance


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_runs_finish_with_their_checkpoints_and_progress(tmp_path, ray_instance):
    with RunQueue(tmp_path, ray_address="local") as queue:
        assert queue.where.startswith("on the Ray cluster at ") and queue.where.endswith(", 1 node")
        runs = [queue.submit(TrainConfig(**{**TINY, "epochs": 2, "seed": seed}), f"ray-{seed}") for seed in (0, 1)]
        assert statuses(queue) == {"ray-0": "running", "ray-1": "running"}  # a CPU each
        assert all(queue.wait(run.id, timeout=120) for run in runs)
        for run in runs:
            run = queue.snapshot(run.id)
            assert run.status == "finished" and run.checkpoint == tmp_path / f"{run.name}.pt"
            ckpt = load_checkpoint(run.checkpoint)
            assert ckpt.film is not None and ckpt.film.epochs[-1] == 2
            # The epochs' events came back, as the file has them.
            assert [e.test for e in run.history.epochs] == [e.test for e in ckpt.history.epochs]
            assert run.step == 8 and run.img_per_s > 0


def test_ray_stop_ends_a_run_and_keeps_its_best_epoch(tmp_path, ray_instance):
    with RunQueue(tmp_path, ray_address="local") as queue:
        run = queue.submit(TrainConfig(**{**TINY, "epochs": 50}), "long")
        until(lambda: queue.snapshot(run.id).history.epochs)
        queue.stop(run.id)
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
    assert run.status == "stopped" and run.message.startswith("Stopped by request during epoch")
    assert load_checkpoint(run.checkpoint).metrics.epoch >= 1


def test_ray_a_killed_worker_fails_its_run_cleanly_and_the_queue_goes_on(tmp_path, ray_instance):
    with RunQueue(tmp_path, ray_address="local") as queue:
        run = queue.submit(TrainConfig(**{**TINY, "epochs": 50}), "doomed")
        until(lambda: (tmp_path / "doomed.pt").is_file())  # its first best epoch has come back
        [name] = [n for n in ray.util.list_named_actors() if n.endswith(str(tmp_path / "doomed.pt"))]
        ray.kill(ray.get_actor(name))
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
        assert run.status == "failed"
        assert run.message == f"Failed: {LOST} after epoch {run.weights_epoch}; its last checkpoint is kept."
        assert load_checkpoint(run.checkpoint).metrics.epoch >= 1
        after = queue.submit(TrainConfig(**TINY), "after")
        assert queue.wait(after.id, timeout=120) and queue.snapshot(after.id).status == "finished"
