"""Drives VAE Studio for the tests and the benchmarks, which share it: ``harness.apptest`` runs the
app in Streamlit's AppTest and makes the events only a browser sends; ``harness.browser`` serves it
for real and drives headless Chromium; ``harness.protocol`` is a session on a served app without a
browser, speaking Streamlit's websocket protocol."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project: app.py, pages/, checkpoints/
BUNDLED_DIR = ROOT / "checkpoints"  # the bundled models
BUNDLED = BUNDLED_DIR / "default.pt"  # the app's default model
TINY = dict(train_size=512, val_size=256, batch_size=128, epochs=1)  # a run of seconds on a CPU, for the tests
