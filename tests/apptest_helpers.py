"""Helpers for AppTest tests of the whole app (entry point, sidebar and pages), also used by
``bench/page_latency.py``: browser-only events are injected by widget key, the canvas as
{"drawing": {"raw", "data"}} with a real PNG data URL, a plotly click as {"selection": {"points": [...]}}.
"""

import base64
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest


ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "checkpoints" / "default.pt"


def run_app(page: str | None = None) -> AppTest:
    """The app after its first run (on ``page`` if given), checked to have raised nothing."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def navigation_mode_init(original_init):
    """A ``PagesManager.__init__`` that leaves the legacy pages-folder mode at once, as a real server
    does for good after its first st.navigation call.

    AppTest forgets before every run that the app uses st.navigation, so, seeing the pages/ folder,
    each run would start in the legacy mode, which app.py leaves with a rerun that drops the widget
    values a test injected."""

    def init_then_leave_legacy_mode(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    return init_then_leave_legacy_mode


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    """The file a user would upload."""
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def canvas_value(image: np.ndarray) -> dict:
    """What the canvas component sends: Fabric's JSON and the canvas as a PNG data URL."""
    url = "data:image/png;base64," + base64.b64encode(image_bytes(Image.fromarray(image))).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}}


def drawn(mnist, index: int) -> np.ndarray:
    """A real test digit painted white on a black 280x280 RGBA canvas, as the browser returns it."""
    big = Image.fromarray(mnist.test_images[index].numpy()).resize((280, 280), Image.Resampling.BICUBIC)
    return np.asarray(big.convert("RGBA"))


def click(point: dict) -> dict:
    """A plotly chart's selection state after a click on ``point``."""
    return {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}


def plotly_rows(value) -> list:
    """The rows of an array in a Plotly figure's JSON spec, as lists: numeric numpy arrays are sent
    as typed arrays, {"dtype", "bdata" (base64), "shape"}; anything else as JSON lists."""
    if not isinstance(value, dict):
        return value
    flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return flat.reshape([int(n) for n in str(value.get("shape", flat.size)).split(",")]).tolist()
