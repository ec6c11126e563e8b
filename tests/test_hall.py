"""A small lecture hall (``studio.hall``): a local Ray head, two app servers sharing the classroom's
queue on it (``classroom.hall``) and HAProxy in front of them. Two browsers pinned to different
replicas each queue a run and both see both; a replica is killed, and its browser reconnects to the
other and finds its runs and its lesson step; the classroom's actor is killed, and Ray restarts it
with its records whole, answering the next run queued. Tiny runs, two learners: the big classes are bench/hall.py's."""

from __future__ import annotations

import shutil
import time

import pytest
from playwright.sync_api import Page, expect

from classroom.store import read_runs
from harness import BUNDLED_DIR
from harness.browser import ARTIFACTS, RERUN_MS, free_port, page_title, save_screenshot, settle
from harness.wait import until
from studio.hall import BALANCER_CONFIG, REPLICA_COOKIE, hall

pytestmark = pytest.mark.browser

LESSON_STEP = "?lesson=vae-basics&step=11"  # the lesson's step on the Train page, as a class link has it
TINY = {"epochs": "1", "batch_size": "64", "train_size": "256", "val_size": "128"}
RECONNECT_S = 10  # a learner whose replica is lost is back within this
# Notes in the page when Streamlit's app leaves the connected state, however soon it is back.
CONNECTION_LOST_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.connectionLost = false;
  new MutationObserver(() => { window.connectionLost ||= app.dataset.testConnectionState !== "CONNECTED"; })
    .observe(app, {attributes: true, attributeFilter: ["data-test-connection-state"]});
}"""


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    """A hall of two replicas on its own checkpoint folder (the default model in it)."""
    if shutil.which("haproxy") is None:
        pytest.fail("HAProxy is not installed: `make test` installs it (make balancer).")
    checkpoints = tmp_path_factory.mktemp("hall")
    shutil.copy2(BUNDLED_DIR / "default.pt", checkpoints / "default.pt")
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("VAE_STUDIO_WARM_UP", "0")  # the replicas' caches are not what this tests
        with hall([free_port(), free_port()], free_port(), checkpoints, ARTIFACTS / "hall", ray_port=free_port(),
                  stats_port=free_port()) as running:
            yield running, checkpoints


@pytest.fixture(scope="module")
def learners(two_replicas, chromium):
    """Two learners' browsers on the lesson's Train step, the first pinned to r1, the second to r2
    by the balancer's cookie."""
    running, _ = two_replicas
    pages = []
    for replica in ("r1", "r2"):
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        context.add_cookies([{"name": REPLICA_COOKIE, "value": replica, "url": running.url}])
        page = context.new_page()
        page.set_default_timeout(RERUN_MS)
        page.goto(f"{running.url}/{LESSON_STEP}")
        pages.append(page)
    for page in pages:
        expect(page_title(page)).to_have_text("Train a VAE", timeout=90_000)
        settle(page)
    yield pages
    for page in pages:
        page.context.close()


def queue_run(page: Page, name: str) -> None:
    for key, value in {"name": name, **TINY}.items():
        box = page.locator(f".st-key-train_{key} input")
        box.fill(value)
        box.press("Tab")
    page.get_by_role("button", name="Queue my run").click()
    expect(page.get_by_role("heading", name=f"Run “{name}”")).to_be_visible()


def expect_runs(page: Page, *names: str, timeout: float = RERUN_MS) -> None:
    """The runs' names in the page's table of the class's runs (in the grid's cells for screen readers:
    the grid itself is drawn on a canvas)."""
    table = page.locator(".st-key-train_runs")
    for name in names:
        # .first: while a rerun redraws the table, the old grid and the new one can both be there
        expect(table.locator("td").get_by_text(name, exact=True).first).to_be_attached(timeout=timeout)


def test_the_balancer_config_pins_browsers_by_the_cookie_the_hall_names():
    assert f"cookie {REPLICA_COOKIE} insert" in BALANCER_CONFIG.read_text()


def test_two_learners_on_two_replicas_each_queue_a_run_and_both_see_both(two_replicas, learners):
    running, checkpoints = two_replicas
    assert {name: state["sessions"] >= 1 for name, state in running.replicas().items()} == {"r1": True, "r2": True}
    for page, name in zip(learners, ("hall-a", "hall-b")):
        queue_run(page, name)
    for page in learners:
        expect_runs(page, "hall-a", "hall-b")
    assert [run["name"] for run in read_runs(checkpoints)] == ["hall-a", "hall-b"]  # one queue, in order
    save_screenshot(learners[0], "hall-two-replicas")


def test_a_learner_whose_replica_is_lost_is_back_on_the_other_with_their_runs_and_step(two_replicas, learners):
    running, _ = two_replicas
    first = learners[0]
    connected = first.locator('[data-testid="stApp"][data-test-connection-state="CONNECTED"]')
    first.evaluate(CONNECTION_LOST_JS)
    running.kill("r1")
    lost = time.monotonic()
    first.wait_for_function("() => window.connectionLost", timeout=RECONNECT_S * 1000)  # its websocket closed
    expect(connected).to_have_count(1, timeout=RECONNECT_S * 1000)
    expect_runs(first, "hall-a", "hall-b", timeout=RECONNECT_S * 1000 - (time.monotonic() - lost))
    back = time.monotonic() - lost
    settle(first)  # the page drawn afresh by the other replica, no element of the lost one's left
    expect(first.locator(".st-key-lesson_panel")).to_contain_text("Step 11 of 11")
    expect(first.get_by_role("heading", name="Run “hall-a”")).to_be_visible()  # their own, found by their cookie
    until(lambda: running.replicas()["r1"]["status"].startswith("DOWN"), 10, 0.5, "the balancer to mark r1 down")
    save_screenshot(first, "hall-after-r1-lost")
    print(f"back on r2 {back:.1f} s after r1 was killed")


def test_the_classroom_lost_is_restarted_with_its_records_whole(two_replicas, learners):
    running, checkpoints = two_replicas
    second = learners[1]
    before = running.classroom_pid()
    running.kill_classroom()
    queue_run(second, "hall-c")  # answered by the actor Ray has started again, from the store
    expect_runs(second, "hall-a", "hall-b", "hall-c")
    until(lambda: running.classroom_pid() not in (None, before), 10, 0.5, "a new process for the actor")
    records = read_runs(checkpoints)
    assert [run["name"] for run in records] == ["hall-a", "hall-b", "hall-c"], "each run once, none lost"
    assert not [run for run in records if run["status"] == "failed"], records
