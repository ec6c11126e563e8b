"""The whole app (entry point, sidebar and pages) in Streamlit's AppTest, for the tests and
``bench/page_latency.py``: browser-only events are injected by widget key, the canvas as
{"drawing": {"raw", "data"}} with a real PNG data URL, a plotly click as {"selection": {"points": [...]}}.
"""

import base64
import io
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from studio import identity, resources, runs
from vae.checkpoint import resume_path
from vae.config import TrainConfig

from . import ROOT

RUN_TIMEOUT_S = 180  # one script run at most: a page's first visit encodes the test set on a busy CPU
CANVAS = "streamlit-drawable-canvas.streamlit_drawable_canvas"  # the Draw page's component, among the page's others


def run_app(page: str | None = None, model: str | None = None, **state) -> AppTest:
    """The app after its first run, then on ``page`` if given, with ``model`` (a checkpoint path)
    chosen in the sidebar and ``state`` set in the session before that page's first run; checked
    to have raised nothing."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    at.run()
    if model is not None:
        at.selectbox(key=resources.ACTIVE_KEY).set_value(model)
    for key, value in state.items():
        at.session_state[key] = value
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every caption, Markdown and alert text of the page, as one string."""
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def image_captions(at: AppTest) -> list[str]:
    """The captions of the page's images."""
    return [c for image in at.get("image") for c in image.captions]


def fill_form(at: AppTest, **values) -> AppTest:
    """The Train page's form with ``values`` set by field (``name``, ``arch`` or a number's field)."""
    for key, value in values.items():
        widget = at.text_input(key="train_name") if key == "name" else \
            at.selectbox(key="train_arch") if key == "arch" else at.number_input(key=f"train_{key}")
        widget.set_value(value)
    return at


def press_queue(at: AppTest) -> AppTest:
    """Queue the form's run, checked to have raised nothing."""
    next(b for b in at.button if b.label == "Queue my run").click().run()
    assert not at.exception, at.exception
    return at


def navigation_mode_init(original_init):
    """A ``PagesManager.__init__`` that leaves the legacy pages-folder mode at once, as a real server
    does for good after its first st.navigation call.

    AppTest forgets before every run that the app uses st.navigation, so, seeing the pages/ folder,
    each run would start in the legacy mode, which a server leaves once, as the ``studio`` package
    is first imported (with a rerun that would drop the widget values a test injected)."""

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


@contextmanager
def queued_run(config: TrainConfig, name: str, owner: str = "bench", ready=lambda run: run.step >= 5):
    """A run in the app's queue (``studio.runs``, as the Train page queues it) from the moment
    ``ready(run)`` holds until the block ends; yields a function that gives its snapshot now. The
    run is stopped at the end and its files removed: a benchmark's run is not a model to keep."""
    queue = runs.queue()
    run_id = queue.submit(config, name, owner=owner).id
    try:
        while not ready(queue.snapshot(run_id)):
            assert queue.snapshot(run_id).active, queue.snapshot(run_id).message
            time.sleep(0.1)
        yield lambda: queue.snapshot(run_id)
    finally:
        queue.stop(run_id)
        queue.wait(run_id)
        for path in (resources.checkpoint_dir() / f"{name}.pt", resume_path(resources.checkpoint_dir() / f"{name}.pt")):
            path.unlink(missing_ok=True)


def training_rate(snapshot, action) -> float:
    """A run's training images/s while ``action()`` runs (``snapshot``: as ``queued_run`` yields)."""
    step, start = snapshot().step, time.perf_counter()
    action()
    return (snapshot().step - step) * snapshot().config.batch_size / (time.perf_counter() - start)


def progress_of(at: AppTest):
    """The learner's progress (``classroom.progress.Progress``) as the server keeps it."""
    return runs.room().learner(at.session_state[identity.TOKEN_KEY]).progress
