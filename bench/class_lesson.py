"""A class's lesson on one server: every learner's run at the class's run size through the queue, and
what the teacher's view costs while they train.

    .venv/bin/python bench/class_lesson.py                  # 30 learners, the "lesson" run size
    .venv/bin/python bench/class_lesson.py --learners 2 --refreshes 5

1. A class is started in a fresh checkpoint folder (a temp dir holding a copy of the bundled
   default model) and --learners students join it. Each queues one run at the class's run size
   (``classroom.classes.RUN_SIZES``) with the seed the Train page would give it
   (``studio.classes.run_seed``), straight into the app's queue (``classroom.queue.RunQueue``, as
   ``studio.runs`` holds it, with the class's limits); the runs train one at a time
   (``VAE_STUDIO_WORKERS`` for more). Printed: the time from the first run queued until the last
   is done, each run's time, and the spread of the kept models' test −ELBO.
2. The teacher's view (pages/teacher.py, in AppTest, the teacher's link opened) with those learners
   in the store, each with a place in the lesson and an answer, and their ended runs: the server
   time of a script run, median of --refreshes. The live table reruns every
   ``studio.classes.TEACHER_REFRESH_S`` seconds and is a part of that script run, so the median over
   that period bounds the share of one core the view takes from a training run.
Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from classroom.classes import RUN_SIZES, Classroom, new_token
from classroom.lessons import LESSON_DIR, load_lessons
from classroom.progress import Place
from harness import BUNDLED, ROOT
from harness.apptest import RUN_TIMEOUT_S, navigation_mode_init
from studio import classes, runs
from vae import load_checkpoint
from vae.config import TrainConfig
from vae.settings import configure


def train_class(room: Classroom, class_id: int, learners: int) -> None:
    """Each learner joins and queues a run at the class's size; the time until the last is done."""
    queue, size = runs.queue(), RUN_SIZES[room.class_of(class_id).run_size]
    tokens, steps = [new_token() for _ in range(learners)], len(load_lessons(LESSON_DIR)[0]["vae-basics"].steps)
    for i, token in enumerate(tokens):  # each somewhere in the lesson, with an answer
        room.join(token, class_id, f"Learner {i + 1}")
        room.save(token, room.learner(token).progress.at(Place("vae-basics", i % steps)).answer("vae-basics", 1, 1))
    start = time.perf_counter()
    queued = [queue.submit(TrainConfig(epochs=size.epochs, train_size=size.train_size, seed=classes.run_seed(token, 0)),
                           f"learner-{i + 1:02d}", owner=token, limit_per_owner=1,
                           total_per_owner=room.class_of(class_id).runs_each)
              for i, token in enumerate(tokens)]
    for run in queued:
        queue.wait(run.id)
    total = time.perf_counter() - start
    ended = [queue.snapshot(run.id) for run in queued]
    losses = [load_checkpoint(run.checkpoint).metrics.test.loss for run in ended if run.status == "finished"]
    print(f"{learners} runs of {size.label}: the last done {total:.0f} s after the first was queued "
          f"({total / 60:.1f} min); {len(losses)} finished"
          + "".join(f"; {run.name} {run.status}: {run.message}" for run in ended if run.status != "finished"))
    print("  each run: " + ", ".join(f"{run.ended_at - run.started_at:.1f} s" for run in ended))
    if losses:
        print(f"  test −ELBO: min {min(losses):.2f}, median {statistics.median(losses):.2f}, max {max(losses):.2f}, "
              f"spread {max(losses) - min(losses):.2f} nats (seeds {len({r.config.seed for r in ended})} distinct)")


def time_teachers_view(room: Classroom, class_id: int, refreshes: int) -> None:
    """The teacher's view's server time per script run, median of ``refreshes``."""
    week = room.class_of(class_id)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    at.query_params.update({"class": str(week.id), "teacher": week.secret})
    at.run()
    at.switch_page("pages/teacher.py").run()
    assert not at.exception and at.title[0].value == "Teacher's view", at.exception or at.title
    times = []
    for _ in range(refreshes):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    assert not at.exception, at.exception
    median = statistics.median(times)
    rows = len(at.dataframe[0].value)
    print(f"teacher's view, {rows} learners: {1000 * median:.1f} ms per script run (median of {refreshes}; "
          f"min {1000 * min(times):.1f}, max {1000 * max(times):.1f}); once every {classes.TEACHER_REFRESH_S} s "
          "that is "
          f"{100 * median / classes.TEACHER_REFRESH_S:.2f}% of one core, the most it can take from a training run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--run-size", choices=list(RUN_SIZES), default="lesson")
    parser.add_argument("--refreshes", type=int, default=20, help="timed script runs of the teacher's view")
    args = parser.parse_args()
    os.chdir(ROOT)  # AppTest reads .streamlit/config.toml from the working directory
    PagesManager.__init__ = navigation_mode_init(PagesManager.__init__)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{os.environ.get('VAE_STUDIO_WORKERS') or 1} run(s) at a time")
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(BUNDLED, Path(folder) / "default.pt")
        configure(checkpoint_dir=Path(folder), warm_up=False)
        try:
            room = Classroom(runs.queue())
            week = room.start_class("Bench", "vae-basics", args.run_size, runs_each=1)
            train_class(room, week.id, args.learners)
            time_teachers_view(room, week.id, args.refreshes)
        finally:
            runs.close()


if __name__ == "__main__":
    main()
