"""The classroom load case, scaled down: concurrent browser sessions drawing, clicking the map,
generating and watching the run while the server trains. ``bench/load_sessions.py`` is the
full-size run whose latencies bench/RESULTS.md reports; this runs the same class
(``harness.scenarios.run_load``) with three sessions (one in Chromium, two websocket clients), and checks
what must hold on any machine, however busy: every interaction answered, no session shown another's
drawing, and training under load bit-identical to the same run alone. Latencies are not asserted here.
The queueing class (``harness.scenarios.run_queue_class``, full size in ``bench/queue_class.py``) runs
with three websocket clients, each queueing a run of one epoch on 500 images.
"""

from __future__ import annotations

import copy

import pytest
import torch

from harness.browser import require_chromium
from harness.reports import CYCLE, QUEUE_CYCLE
from harness.scenarios import differences, run_load, run_queue_class
from harness.strokes import pattern_check


@pytest.mark.browser
def test_concurrent_sessions_are_answered_kept_apart_and_leave_training_bit_identical():
    require_chromium()
    report = run_load(sessions=3, clients=2, interactions=len(CYCLE), timeout=60, train_size=1000)
    summary = report.summary()
    print(summary)  # shown with -s

    assert len(report.interactions) == report.planned == 3 * len(CYCLE) and not report.unanswered, summary
    assert report.during_training == report.planned, "every interaction should overlap the training run"
    sightings = {(s.session, s.where) for s in report.sightings}
    assert sightings >= {(i, where) for i in range(3) for where in ("Draw", "Latent map")}, summary
    assert not report.leaks, summary
    assert report.epochs_done >= 1 and report.differences == [], summary


def test_a_class_queueing_its_runs_gets_them_all_in_queue_order_while_using_the_other_pages():
    report = run_queue_class(sessions=3, interactions=len(QUEUE_CYCLE), timeout=60, train_size=500, think=0.5)
    summary = report.summary()
    print(summary)  # shown with -s

    assert sorted(report.queued) == ["learner-00", "learner-01", "learner-02"] and not report.refused, summary
    assert len(report.interactions) == report.planned == 3 * len(QUEUE_CYCLE) and not report.unanswered, summary
    assert not report.leaks, summary
    assert len(report.records) == 3 and not report.run_problems, summary
    assert report.saved == set(report.queued), summary
    assert not report.order_problems, summary


def test_each_users_stroke_is_recognisably_its_own():
    # What the leak check rests on: for each of the 31 users, its view, even a pixel off, matches
    # its own pattern best, and no other pattern comes close.
    rows = pattern_check()
    assert len(rows) >= 31, "a class of 30 and the first visitor"
    for own, row in enumerate(rows):
        assert row["best"] == own and row["own"] > 0.99, row
        assert row["closest_other"] < 0.6, f"pattern {own} looks too much like another: {row}"


def test_checkpoint_comparison_sees_one_changed_weight_and_ignores_timings():
    job = {"state_dict": {"w": torch.ones(3)},
           "history": {"epochs": [{"epoch": 1, "seconds": 4.2, "img_per_s": 900.0, "train": {"loss": 2.0}}]}}
    alone = copy.deepcopy(job)
    alone["history"]["epochs"][0].update(seconds=9.9, img_per_s=300.0)
    assert differences(job, alone, "checkpoint") == []

    alone["state_dict"]["w"][1] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))  # one ulp
    alone["history"]["epochs"][0]["train"]["loss"] = 2.0 + 1e-12
    found = differences(job, alone, "checkpoint")
    assert len(found) == 2
    assert found[0].startswith("checkpoint/state_dict/w: tensors differ")
    assert found[1].startswith("checkpoint/history/epochs[0]/train/loss: 2.0 != 2.0000000")
