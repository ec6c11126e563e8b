"""The app over a queue it cannot serve, or whose records are damaged, and a server that resumes
its queue as it starts (``python -m studio.serve``) rather than when a first page is opened."""

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import asdict

from classroom.queue import RunQueue
from classroom.store import DATABASE, LOCK
from harness import ROOT, TINY
from harness.apptest import run_app
from harness.browser import free_port, heading, stop_process_group, tail, wait_until_healthy
from harness.protocol import AppSession
from harness.wait import until
from studio import runs
from vae import load_checkpoint
from vae.config import TrainConfig
from vae.train import TrainResult

EPOCH = {"epoch": 1, "seconds": 1.5, "img_per_s": 340.0, "train": {"loss": 210.0, "bce": 190.0, "kl": 20.0}, "val": {},
         "test": {"loss": 200.0, "bce": 180.0, "kl": 20.0}}


def legacy_record(run_id, name, epoch):
    """A finished run's record as earlier versions wrote it: .runs/NNNNNN.json."""
    return {"id": run_id, "name": name, "owner": "alice", "config": asdict(TrainConfig(**TINY)), "status": "finished",
            "message": "Finished.", "epoch": 1, "has_checkpoint": False, "queued_at": 1.0e9, "started_at": 1.0e9,
            "ended_at": 1.0e9, "history_epochs": [epoch]}


def test_a_record_without_a_loss_is_set_aside_and_the_runs_table_shows_the_rest(checkpoint_dir):
    (checkpoint_dir / ".runs").mkdir()
    for run_id, name, epoch in ((1, "good", EPOCH), (2, "no-loss", {**EPOCH, "test": {"bce": 180.0, "kl": 20.0}})):
        (checkpoint_dir / ".runs" / f"{run_id:06d}.json").write_text(json.dumps(legacy_record(run_id, name, epoch)))
    try:
        at = run_app("pages/train.py")  # a KeyError in the runs table before records were checked
        assert list(at.dataframe(key="train_runs").value["Name"]) == ["good"]
        warnings = " ".join(w.value for w in at.sidebar.warning)
        assert "000002.json (damaged: its epoch 1 has no 'loss')" in warnings
    finally:
        runs.close()


def test_a_folder_that_cannot_hold_the_queue_leaves_every_page_served(checkpoint_dir):
    # Root writes whatever the permissions say: the lock files are folders instead (.runs/.lock was
    # the lock of earlier versions), which no user can open either.
    (checkpoint_dir / ".runs" / ".lock").mkdir(parents=True)
    (checkpoint_dir / LOCK).mkdir(parents=True)
    for page in ("pages/home.py", "pages/train.py", "pages/board.py"):
        at = run_app(page)  # raised nothing
        [warning] = [w.value for w in at.sidebar.warning if "Runs cannot be queued" in w.value]
        assert warning.startswith(f"Runs cannot be queued here now: The queue of runs cannot be kept in "
                                  f"{checkpoint_dir}")
    assert at.title[0].value == "Rate against distortion", "the board, with the models on disk"


def statuses(folder):
    with contextlib.closing(sqlite3.connect(folder / DATABASE)) as db:
        return dict(db.execute("SELECT name, status FROM runs"))


async def open_page(url, page):
    async with AppSession(url) as session:
        return await session.open(page)


def test_a_server_started_with_runs_queued_trains_them_before_any_page_is_opened(checkpoint_dir, tmp_path):
    def killed_mid_run(config, path, *, stop, **kwargs):  # as a server killed while the run trained
        stop.wait()
        return TrainResult("stopped", "Stopped by request.", None)

    with RunQueue(checkpoint_dir, train_fn=killed_mid_run) as before:
        for name in ("cut", "waiting"):
            before.submit(TrainConfig(**TINY), name)
    assert statuses(checkpoint_dir) == {"cut": "running", "waiting": "queued"}
    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", "studio.serve", "--server.address", "127.0.0.1", "--server.port", str(port)]
    env = {**os.environ, "VAE_CHECKPOINT_DIR": str(checkpoint_dir), "VAE_STUDIO_WARM_UP": "0"}
    with open(log, "wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            until(lambda: set(statuses(checkpoint_dir).values()) == {"finished"} or server.poll() is not None,
                  timeout=300, what="both runs to finish with no page opened")
            assert server.poll() is None, tail(log)
            wait_until_healthy(server, f"http://127.0.0.1:{port}", log)
            first = asyncio.run(open_page(f"http://127.0.0.1:{port}", "train"))  # the app, as the first browser sees it
            assert first.title == heading(ROOT / "pages/train.py") and not first.errors
        finally:
            stop_process_group(server)
    assert [load_checkpoint(checkpoint_dir / f"{name}.pt").metrics.epoch for name in ("cut", "waiting")] == [1, 1]
