"""Drives VAE Studio for the tests and the benchmarks, which share it: ``harness.apptest`` runs the
app in Streamlit's AppTest and makes the events only a browser sends; ``harness.browser`` serves it
for real and drives headless Chromium; ``harness.protocol`` is a session on a served app without a
browser, speaking Streamlit's websocket protocol; ``harness.scenarios`` puts a class of simulated
users (``harness.users``: each with its own stroke, ``harness.strokes``, looking for what
``harness.probes`` names) on a served app and says what they did (``harness.reports``);
``harness.wait.until`` is the tests' one polling loop."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project: app.py, pages/, checkpoints/
BUNDLED_DIR = ROOT / "checkpoints"  # the bundled models
BUNDLED = BUNDLED_DIR / "default.pt"  # the app's default model
TINY = dict(train_size=512, val_size=256, batch_size=128, epochs=1)  # a run of seconds on a CPU, for the tests


def train_watching(look):
    """``vae.train.train``, calling ``look(event)`` after each of its progress events has been
    recorded: a test acts at a known moment of a real run (a tiny epoch takes milliseconds)."""
    from vae.train import train

    def watched(*args, callback, **kwargs):
        def on_event(event):
            callback(event)
            look(event)

        return train(*args, callback=on_event, **kwargs)

    return watched
