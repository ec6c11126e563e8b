"""Cold start: from ``streamlit run app.py`` to the first page being usable, in a real browser.

    .venv/bin/python bench/cold_start.py             # 3 timed rounds after a warm-up one, about 2 minutes
    .venv/bin/python bench/cold_start.py --rounds 5

Each round starts a fresh server (``streamlit run``, headless, on a free local port, as the browser
tests do; see harness/browser.py) and opens it in a new context of one headless Chromium
launched beforehand, so the browser's own start is not counted. Times are from starting the
process to:
  listening  the server answers /_stcore/health (polled every 0.25 s, so up to 0.25 s late; the
             browser opens the page then);
  usable     the Home page has finished its first script run: the sidebar lists the eight pages and
             the model card shows the test -ELBO, the page shows its title, the active model and
             its layer table, and no script run is in progress or requested (the app root's
             ``data-test-script-state``, what Streamlit's own end-to-end tests wait on);
and, from the click on "Draw" in the sidebar, the first visit to the Draw page until its canvas is
shown and the run has ended; then the first drawing, from the end of a stroke (a "7") on that canvas
until the page's answer is shown (the model's view, its reconstruction, the -ELBO and the vote) and
the run has ended: what a learner waits for who draws as soon as the server is up (the canvas sends
a stroke some 200 ms after the pen lifts, which is counted). "Server CPU" is the server process's
user + system CPU time from its start until usable: what the server itself computed, which other
load on the machine inflates far less than the wall-clock times (the browser's rendering is not in it).

Reference, in the same rounds (alternating with the app): the same server command on a one-line
script (st.title), usable once its title is shown and its run has ended; and how long a bare
``python -c "import torch"`` takes. The OS file cache is warm (the untimed first round), as on
a server restart.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, expect, sync_playwright

from harness import BUNDLED_DIR
from harness.browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    HEADINGS,
    IDLE_APP,
    NAV_LABELS,
    drag,
    image_by_caption,
    nav_labels,
    nav_link,
    page_title,
    require_chromium,
    streamlit_server,
)

HELLO = "import streamlit as st\n\nst.title('Hello')\n"
TIMEOUT_MS = 120_000
SEVEN = [(70, 60), (210, 60), (125, 235)]  # a stroke on the 280 px canvas


def usable_app(page) -> None:
    """The Home page has run to its end and the sidebar's model card is filled."""
    expect(nav_labels(page)).to_have_text(NAV_LABELS, timeout=TIMEOUT_MS)
    expect(page_title(page)).to_have_text(HEADINGS["Home"], timeout=TIMEOUT_MS)
    card = page.get_by_test_id("stSidebar").get_by_test_id("stMetric").filter(has_text="Test −ELBO")
    expect(card.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d"), timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="The active model")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stMarkdown").locator("table")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator(IDLE_APP).wait_for(timeout=TIMEOUT_MS)


def usable_hello(page) -> None:
    expect(page_title(page)).to_have_text("Hello", timeout=TIMEOUT_MS)
    page.locator(IDLE_APP).wait_for(timeout=TIMEOUT_MS)


def first_draw_visit(page) -> float:
    """Seconds from the click on "Draw" to its canvas shown and the run ended."""
    start = time.perf_counter()
    nav_link(page, "Draw").click()
    expect(page.locator(".st-key-draw_canvas_0 canvas.upper-canvas")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator(IDLE_APP).wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def first_drawing(page) -> float:
    """Seconds from the end of the first stroke on the Draw page's canvas to its answer shown (the
    reconstruction, the -ELBO's percentile and the vote) and the run ended."""
    drag(page, page.locator(".st-key-draw_canvas_0 canvas.upper-canvas"), SEVEN)
    start = time.perf_counter()
    expect(image_by_caption(page, "Reconstruction from the mean")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("of the 10,000 test digits")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"^(Looks like a \d|Unsure)"))).to_be_visible(timeout=TIMEOUT_MS)
    page.locator(IDLE_APP).wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def server_cpu_seconds(url: str) -> float:
    """User + system CPU time so far of the server process listening at ``url`` (found by its
    --server.port argument in /proc; Linux only)."""
    port_argument = f"--server.port\0{url.rsplit(':', 1)[1]}\0".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and port_argument in (proc / "cmdline").read_bytes():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except OSError:  # a process that ended meanwhile
            continue
    raise RuntimeError(f"no server process for {url}")


def cold_start(browser: Browser, script: str, usable, draw: bool) -> dict[str, float]:
    """One fresh server of ``script``: seconds to listening and to usable, the server's CPU seconds
    until usable (and the first visit to the Draw page)."""
    start = time.perf_counter()
    with streamlit_server(BUNDLED_DIR, ARTIFACTS / "cold-start-server.log", script=script) as (url, _):
        times = {"listening": time.perf_counter() - start}
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(url)
            usable(page)
            times["usable"] = time.perf_counter() - start
            times["server CPU"] = server_cpu_seconds(url)
            if draw:
                times["first Draw visit"] = first_draw_visit(page)
                times["first drawing"] = first_drawing(page)
        finally:
            context.close()
    return times


def import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (after one untimed warm-up round)")
    args = p.parse_args()

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    results = {"app": [], "hello": [], "import torch": []}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        hello = Path(folder) / "hello.py"
        hello.write_text(HELLO)
        browser = playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)
        try:
            for round_ in range(args.rounds + 1):
                app = cold_start(browser, "app.py", usable_app, draw=True)
                bare = cold_start(browser, str(hello), usable_hello, draw=False)
                torch_s = import_torch()
                label = "warm-up" if round_ == 0 else f"round {round_}"
                print(f"{label:8s} app: " + ", ".join(f"{k} {v:.2f} s" for k, v in app.items())
                      + f" | hello: usable {bare['usable']:.2f} s, server CPU {bare['server CPU']:.2f} s"
                      + f" | import torch {torch_s:.2f} s", flush=True)
                if round_:
                    results["app"].append(app)
                    results["hello"].append(bare)
                    results["import torch"].append(torch_s)
        finally:
            browser.close()

    def median(name, key):
        return statistics.median(r[key] for r in results[name])

    usable, hello_usable = median("app", "usable"), median("hello", "usable")
    cpu, hello_cpu = median("app", "server CPU"), median("hello", "server CPU")
    torch_s = statistics.median(results["import torch"])
    print(f"\nmedian of {args.rounds} rounds:")
    print(f"  app:   listening {median('app', 'listening'):.2f} s, usable {usable:.2f} s (server CPU {cpu:.2f} s), "
          f"then first Draw visit {median('app', 'first Draw visit'):.2f} s, first drawing "
          f"{median('app', 'first drawing'):.2f} s")
    print(f"  hello: listening {median('hello', 'listening'):.2f} s, usable {hello_usable:.2f} s "
          f"(server CPU {hello_cpu:.2f} s)")
    print(f"  python -c 'import torch': {torch_s:.2f} s")
    print(f"  app / hello: usable {usable / hello_usable:.2f}x, server CPU {cpu / hello_cpu:.2f}x; "
          f"app - hello usable: {usable - hello_usable:.2f} s ({(usable - hello_usable) / torch_s:.1f}x an "
          "import of torch)")


if __name__ == "__main__":
    main()
