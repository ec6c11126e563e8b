"""Page model work while a run trains on this server's CPU: a page waits for one of a few slots.

The run holds the cores, and a queue served in order answers sooner, and says so, than every
session's work sharing them at once.
"""

from __future__ import annotations

import contextlib
import time

import streamlit as st

from classroom.gate import ModelWorkGate
from studio import runs
from studio.resources import device

MODEL_WORK_SLOTS = 2  # page script runs doing model work at once while a run trains
WAIT_NOTICE_S = 2.0  # a page that has waited this long for a slot says why
WAIT_POLL_S = 0.5  # then it renews its notice, and looks again, this often


def _training_on_cpu() -> bool:
    return device().type == "cpu" and bool(runs.running()) and runs.queue().trains_here


@st.cache_resource(show_spinner=False)
def model_gate() -> ModelWorkGate:
    return ModelWorkGate(MODEL_WORK_SLOTS, _training_on_cpu)


@contextlib.contextmanager
def model_work():
    """Around a page's model work: while a run trains on the CPU, wait for one of the gate's
    slots; a wait of more than ``WAIT_NOTICE_S`` says why, and how long it has lasted. The notice is
    renewed every WAIT_POLL_S: each renewal lets Streamlit end this run for a newer one (a click,
    another page), and a run that ends meanwhile ends the wait."""
    gate = model_gate()
    started = time.monotonic()
    taken = gate.acquire(timeout=WAIT_NOTICE_S)
    if taken is False:
        notice = st.empty()
        while taken is False:
            wait_notice(notice, time.monotonic() - started, gate.waiting + 1)
            taken = gate.acquire(timeout=WAIT_POLL_S)
        notice.empty()
    try:
        yield
    finally:
        if taken:
            gate.release()


def wait_notice(notice, waited_s: float, queued: int) -> None:
    notice.info(f"Waiting for the training run to free the CPU… {waited_s:.0f} s so far; {queued} pages in "
                "the queue, yours included.", icon=":material/hourglass_top:")
