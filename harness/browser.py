"""Driving VAE Studio in a real browser: the Streamlit server, Chromium, and what a user looks at.

Used by ``tests/test_browser.py`` and the browser benchmarks in ``bench/``. Selectors are
Streamlit's ``data-testid`` attributes and the ``st-key-<key>`` classes of keyed widgets, both
stable across reruns.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from classroom.pages import PAGES

from . import ROOT
from .wait import until

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; CI installs it with `make browser`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
NAV_LABELS = [page.title for page in PAGES.values() if not page.teacher_only]  # as a learner sees them


def heading(script: Path) -> str:
    """The h1 a page's script writes first (its ``st.title("...")``, for an MNIST model where it
    depends on the dataset), which shows that the page has opened."""
    return re.search(r'^\s*st\.title\("(.+)"\)$', script.read_text(), re.MULTILINE)[1]


HEADINGS = {page.title: heading(ROOT / page.file) for page in PAGES.values()}  # a page's navigation label -> its h1
# Plotly counts a press within its doubleClickDelay (500 ms) of the last first press on a chart as a
# double click, wherever it lands, and a double click clears the selection: so a script waits this
# long between two clicks on one chart, as a person does.
PLOTLY_DOUBLE_CLICK_S = 0.6

SERVER_START_S = 60
FIRST_VISIT_MS = 90_000  # the first Draw / Latent map / Generate visit encodes the test set on a busy CPU
RERUN_MS = 30_000  # an ordinary rerun after a click
# The app root while connected and no script run is in progress or requested: what Streamlit's
# own end-to-end tests wait on.
IDLE_APP = ('[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
            '[data-test-script-state="notRunning"]')
RUN_ENDED = re.compile(r"Finished \d+ epochs|Stopped by request")  # the Train page's result box


# ---------------------------------------------------------------- the server and the browser


def require_chromium() -> Path:
    """Fail (never skip) when the browser is missing: a silently skipped suite tests nothing."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the browser tests drive Debian's Chromium. "
                    "Install it with `make browser` (apt-get install chromium).", pytrace=False)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(checkpoint_dir: Path, log_path: Path, port: int | None = None, script: str = "app.py"):
    """``streamlit run app.py`` (or another ``script``) on ``port`` (else a free local one) with its own
    checkpoint folder; yields (the base URL, the server's pid) once ``/_stcore/health`` answers, and
    kills the whole process group afterwards."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    env = {**os.environ, "VAE_CHECKPOINT_DIR": str(checkpoint_dir)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            wait_until_healthy(server, url, log_path)
            yield url, server.pid
        finally:
            stop_process_group(server)


def wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path) -> None:
    def healthy() -> bool:
        if server.poll() is not None:
            pytest.fail(f"The Streamlit server exited with code {server.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        until(healthy, SERVER_START_S, 0.25, f"the Streamlit server to answer {url}/_stcore/health")
    except AssertionError as e:
        pytest.fail(f"{e}:\n{tail(log_path)}")


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the server and anything it started, then SIGKILL what is left after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# ---------------------------------------------------------------- waiting for Streamlit


def settle(page: Page, timeout: float = RERUN_MS) -> None:
    """Wait until the app is connected and no script run is in progress or requested; the short
    pause first lets a rerun that a click has just asked for begin."""
    page.wait_for_timeout(300)
    page.locator(IDLE_APP).wait_for(timeout=timeout)


def open_app(page: Page, url: str) -> None:
    """Load the app and wait for the sidebar to list exactly the eight pages."""
    page.goto(url)
    expect(nav_labels(page)).to_have_text(NAV_LABELS, timeout=FIRST_VISIT_MS)
    expect(page_title(page)).to_have_text(HEADINGS["Home"], timeout=FIRST_VISIT_MS)
    settle(page)


def nav_labels(page: Page) -> Locator:
    """The text of each sidebar navigation link, in order (without the icons' ligature names)."""
    return page.get_by_test_id("stSidebarNavLink").get_by_test_id("stMarkdownContainer")


def page_title(page: Page) -> Locator:
    return page.get_by_test_id("stMain").get_by_role("heading", level=1)


def nav_link(page: Page, label: str) -> Locator:
    """The sidebar navigation link to the page called ``label``."""
    return page.get_by_test_id("stSidebarNavLink").filter(has=page.get_by_text(label, exact=True))


def open_page(page: Page, label: str, timeout: float = FIRST_VISIT_MS) -> None:
    """Click ``label`` in the sidebar navigation and wait for its page to finish running."""
    nav_link(page, label).click()
    expect(page_title(page)).to_have_text(HEADINGS[label], timeout=timeout)
    settle(page, timeout)


def expect_no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


# ---------------------------------------------------------------- what the user sees


def image_by_caption(page: Page, caption: str) -> Locator:
    """The <img> of the st.image whose caption contains ``caption``."""
    caption_box = page.get_by_test_id("stImageCaption").filter(has_text=caption)
    return page.get_by_test_id("stImageContainer").filter(has=caption_box).locator("img")


def expect_image_loaded(image: Locator, timeout: float = RERUN_MS) -> None:
    """Visible, and its picture decoded (not a broken or still-loading <img>)."""
    expect(image).to_be_visible(timeout=timeout)
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") > 0


def pixels(image: Locator, side: int = 28) -> np.ndarray:
    """The element as the user sees it: a grey-level screenshot averaged down to side x side."""
    return grey_levels(image.screenshot(), side)


def grey_levels(picture: bytes, side: int = 28) -> np.ndarray:
    """An encoded picture (PNG, JPEG) as grey levels averaged down to side x side."""
    grey = Image.open(io.BytesIO(picture)).convert("L")
    return np.asarray(grey.resize((side, side), Image.Resampling.BOX), dtype=np.float64)


def contrast(text: str, background: str, opacity: float = 1.0) -> float:
    """WCAG 2.1's contrast ratio of CSS ``rgb(...)`` text drawn at ``opacity`` over ``background``."""
    fore, back = (np.array([float(v) for v in re.findall(r"[\d.]+", colour)[:3]]) for colour in (text, background))
    shown = opacity * fore + (1 - opacity) * back

    def luminance(rgb: np.ndarray) -> float:
        c = rgb / 255
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(linear @ [0.2126, 0.7152, 0.0722])

    light, dark = sorted((luminance(shown), luminance(back)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# The spot to click (within ``reach`` px of a wanted point's centre) that Plotly gives most surely
# to that point, by Plotly's own rule for a click: the point with the smallest
# d = max(|click - centre| - r, 1 - 3/r), r = max(3, marker.size / 2) (the size as set, not as
# drawn when selected), goes first, and a later trace wins a tie; traces with hoverinfo "skip" take
# no clicks. Spots are whole pixels from the wanted point's rounded centre: a mouse event's
# clientX and clientY are integers, so a fractional spot is not where Plotly sees the click.
# ``gap``: the smallest lead of the wanted point's d over any rival that could take the click
# (more than 1 px: a safe click); ``nearest``: the name of the clickable point whose centre
# is nearest that spot, and how far (px). Plotly draws one <g class="trace"> per trace, in the
# figure's order, with a <path class="point"> per point; the graph div's .data holds the traces
# ("grid", "0".."9", the drawing's). ``wanted``: "digit" (any of "0".."9") or a trace name. Points
# under the mode bar (top 60 px) are left out.
ISOLATED_POINT_JS = """
(chart, [wanted, reach]) => {
    const traces = chart.querySelector('.js-plotly-plot').data;
    const top = chart.getBoundingClientRect().top + 60;
    const points = [...chart.querySelectorAll('.scatterlayer .trace')].flatMap((g, i) => {
        if (traces[i].hoverinfo === 'skip') return [];
        const r = Math.max(3, (traces[i].marker?.size ?? 6) / 2);
        return [...g.querySelectorAll('path.point')].map(p => {
            const box = p.getBoundingClientRect();
            return {name: traces[i].name, trace: i, x: box.x + box.width / 2, y: box.y + box.height / 2, r};
        });
    });
    const distance = (p, x, y) => Math.max(Math.hypot(p.x - x, p.y - y) - p.r, 1 - 3 / p.r);
    const isWanted = p => wanted === 'digit' ? /^[0-9]$/.test(p.name) : p.name === wanted;
    const offsets = [];
    for (let dx = -reach; dx <= reach; dx++)
        for (let dy = -reach; dy <= reach; dy++) if (Math.hypot(dx, dy) <= reach) offsets.push([dx, dy]);
    let best = null, bestGap = -Infinity;
    for (const c of points.filter(p => isWanted(p) && p.y > top)) {
        for (const [dx, dy] of offsets) {
            const x = Math.round(c.x) + dx, y = Math.round(c.y) + dy, own = distance(c, x, y);
            let gap = Infinity, nearest = {name: null, distance: Infinity};
            for (const o of points) {
                if (o === c) continue;
                const centre = Math.hypot(o.x - x, o.y - y);
                if (centre < nearest.distance) nearest = {name: o.name, distance: centre};
                if (o.trace < c.trace && own === 0) continue;  // an earlier trace cannot beat 0
                gap = Math.min(gap, distance(o, x, y) - own);
            }
            if (gap > bestGap) { best = {name: c.name, x, y, nearest}; bestGap = gap; }
        }
    }
    return {...best, gap: bestGap};
}
"""


def drag(page: Page, target: Locator, points: list[tuple[float, float]]) -> None:
    """One pen stroke through ``points`` (pixels from the element's top-left corner)."""
    box = target.bounding_box()
    assert box is not None, "the element to draw on is not rendered"
    (x0, y0), rest = points[0], points[1:]
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    for x, y in rest:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/browser/, the whole app height included
    (Streamlit scrolls inside its own container, so the viewport is stretched to fit it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    viewport = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]"
        ".map(e => e.scrollHeight), window.innerHeight)")
    page.set_viewport_size({"width": viewport["width"], "height": min(int(height), 6000)})
    page.wait_for_timeout(300)  # charts and images re-lay out to the new size
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(viewport)
    return path


# Presses one of the film player's buttons (by label) and waits for its slider to reach the last
# frame: the frames played, the milliseconds it took, and whether the first digit trace moved.
PLAY_FILM_JS = """async ([buttonLabel]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.sliders);
  const last = gd._transitionData._frames.length - 1;
  const before = Array.from(gd._fullData[0].x);
  const button = [...gd.querySelectorAll('.updatemenu-button')].find(b => b.textContent.includes(buttonLabel));
  const start = performance.now();
  button.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  let left = gd._fullLayout.sliders[0].active !== last;  // a replay from the last frame first leaves it
  while (!left || gd._fullLayout.sliders[0].active !== last) {
    await new Promise(r => setTimeout(r, 5));
    left = left || gd._fullLayout.sliders[0].active !== last;
    if (performance.now() - start > 60000) break;
  }
  const elapsed = performance.now() - start;
  return {frames: last, elapsed_ms: elapsed, moved: Array.from(gd._fullData[0].x).some((v, i) => v !== before[i])};
}"""
