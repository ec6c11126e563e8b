"""A class's checkpoint folder as the Board shows it: the bundled VAEs beside short runs (1 epoch on
512 images, barely trained: far above the rest) at different seeds and at one seed (which land on one
point), and learners' copies of a trained model (one point too). Shared by tests/test_board.py and,
run as a script, a look at the Board in headless Chromium:

    .venv/bin/python -m harness.board    # -> test-artifacts/browser/board-class-{hidden,all}.png

which serves the app on such a folder, opens the Board with the untrained runs hidden, then shown,
saves a screenshot of each and prints the drawn labels that overprint another label or a marker."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from harness import BUNDLED_DIR, TINY, browser
from vae.config import TrainConfig
from vae.train import train

BUNDLED_VAES = ("default.pt", "beta1.pt", "beta4.pt", "latent2d.pt", "tutorial.pt")
SHORT_RUNS = {"ada": {"seed": 1}, "bo": {"seed": 2}, "cy": {"seed": 0}, "dee": {"seed": 0}, "eve": {"seed": 0},
              "fay": {"seed": 3, "beta": 4.0, "latent_dim": 8}}  # each run's settings beyond SHORT_RUN's
COPIES = {"gus": "beta4.pt", "hal": "beta4.pt"}  # trained with beta4's settings and seed: the same file
# Small layers in fp32 (no second, fp32 pass over the test set): a run of about 2 s on a CPU.
SHORT_RUN = {**TINY, "channels": 4, "hidden": 64, "encoder_hidden": 64, "precision": "fp32"}


def train_short_runs(folder: Path, data=None) -> None:
    """``SHORT_RUNS`` trained into ``folder``, without their films."""
    for name, settings in SHORT_RUNS.items():
        train(TrainConfig(**{**SHORT_RUN, **settings}), folder / f"{name}.pt", data=data, film=False)


def fill_class_folder(folder: Path, short_runs: Path) -> None:
    """The bundled VAEs, the learners' copies and the short runs' models (from ``short_runs``) in ``folder``."""
    for name in BUNDLED_VAES:
        shutil.copy2(BUNDLED_DIR / name, folder / name)
    for name, original in COPIES.items():
        shutil.copy2(BUNDLED_DIR / original, folder / f"{name}.pt")
    for name in SHORT_RUNS:
        shutil.copy2(short_runs / f"{name}.pt", folder / f"{name}.pt")


# The Board's drawn labels (names, the diagonals' −ELBO, the note of hidden runs) and markers, as boxes
# on screen, and the plot area's size.
BOXES_JS = """() => {
  const plot = document.querySelector('.st-key-board_chart .js-plotly-plot');
  const box = e => { const r = e.getBoundingClientRect();
                     return {text: e.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
  return {labels: [...plot.querySelectorAll('.annotation-text, .textpoint text')].filter(e => e.textContent).map(box),
          markers: [...plot.querySelectorAll('.scatterlayer .points path.point')].map(box),
          area: box(plot.querySelector('.nsewdrag'))};
}"""


def board_boxes(page) -> dict:
    """The Board's drawn labels and markers on screen, and its plot area (``BOXES_JS``)."""
    return page.evaluate(BOXES_JS)


def overprints(boxes: dict) -> list[tuple[str, str]]:
    """Each pair of a drawn label and another label or a marker that overlap by more than a pixel."""
    def overlap(a, b) -> bool:
        return min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > 1 and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > 1

    labels, markers = boxes["labels"], boxes["markers"]
    return ([(a["text"], b["text"]) for a, b in itertools.combinations(labels, 2) if overlap(a, b)]
            + [(a["text"], "a marker") for a in labels for m in markers if overlap(a, m)])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder, short_runs = Path(tmp) / "checkpoints", Path(tmp) / "short-runs"
        folder.mkdir()
        short_runs.mkdir()
        train_short_runs(short_runs)
        fill_class_folder(folder, short_runs)
        log = browser.ARTIFACTS / "board-class-server.log"
        with browser.streamlit_server(folder, log) as (url, _), sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(browser.require_chromium()),
                                                  args=browser.CHROMIUM_ARGS)
            page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            browser.open_app(page, url)
            browser.open_page(page, "Board")
            chart = page.locator(".st-key-board_chart .js-plotly-plot")

            def look(shot: str) -> None:
                expect(chart).to_be_visible()
                browser.settle(page)
                boxes = board_boxes(page)
                area = boxes["area"]
                print(f"plot area {area['x1'] - area['x0']:.0f} x {area['y1'] - area['y0']:.0f} px; "
                      f"{len(boxes['labels'])} labels, {len(boxes['markers'])} markers")
                print(f"board-class-{shot}:", overprints(boxes) or "no label overprints another or a marker")
                print(browser.save_screenshot(page, f"board-class-{shot}"))

            look("hidden")
            page.locator(".st-key-board_hide_untrained label").click()
            look("all")
            chromium.close()


if __name__ == "__main__":
    main()
