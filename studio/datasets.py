"""What the pages say of a model's dataset: its name beside the model, its images' captions by
label, and what an upload contained (``vae.datasets.Report``) before a run is queued on it."""

from __future__ import annotations

import streamlit as st

from vae.data import Dataset, DatasetInfo
from vae.datasets import Report
from vae.images import make_grid
from vae.neighbours import LabelWords

REPORT_SAMPLES = 8  # images shown per label in an upload's report


def noun(info: DatasetInfo) -> str:
    """What a page calls one of the dataset's images: "digit" or "image" (``vae.neighbours.LabelWords``)."""
    return LabelWords(info.label_names).noun


def label_phrase(info: DatasetInfo, label: int) -> str:
    """How a caption names a label: "a 7" for a digit, the name itself otherwise."""
    name = info.label_names[label]
    return f"a {name}" if name.isdigit() else name


def test_caption(data: Dataset, index: int) -> str:
    """``Test #12: a 7``, or the label's name, or the number alone for an unlabelled set."""
    if not data.info.labelled:
        return f"Test #{index}"
    return f"Test #{index}: {label_phrase(data.info, int(data.test_labels[index]))}"


def neighbour_caption(data: Dataset, index: int) -> str:
    """``7 · test #12`` under a small image among others; ``test #12`` for an unlabelled set."""
    if not data.info.labelled:
        return f"test #{index}"
    return f"{data.info.label_names[int(data.test_labels[index])]} · test #{index}"


def on_dataset(info: DatasetInfo) -> str:
    """The line a page shows under its title for a model of a dataset other than MNIST."""
    return f"This model was trained on **{info.name}** ({info.form}, {_labels(info)})."


def _labels(info: DatasetInfo) -> str:
    if not info.labelled:
        return "unlabelled"
    names = ", ".join(info.label_names[:6]) + (", …" if len(info.label_names) > 6 else "")
    return f"{len(info.label_names)} labels: {names}"


def show_report(report: Report, data: Dataset) -> None:
    """What a folder or zip contained: counts, sizes, the background, what was skipped and why, and
    a few of its converted images per label, as the model will see them."""
    info = data.info
    first, *rest = report.lines()
    st.markdown(f"**{first}**\n" + "\n".join(f"- {line.strip()}" for line in rest))
    counts = report.label_counts if info.labelled else {"samples": report.images}
    for label, (name, count) in enumerate(counts.items()):
        rows = (data.train_labels == label).nonzero()[:REPORT_SAMPLES, 0]
        st.image(make_grid(data.train_images[rows], ncol=REPORT_SAMPLES, pad=2, scale=2),
                 caption=f"{name}: {count:,} images, as the model sees them",
                 alt=f"The first {min(count, REPORT_SAMPLES)} images of {name}, as the model sees them")
