"""Home: what a VAE is, each idea linked to the page that shows it, and the active model's make-up."""

import streamlit as st

from classroom.classes import NAME_CHARS, RUN_SIZES, RUNS_EACH, ClassError
from classroom.pages import PAGES
from classroom.queue import QueueError
from studio import access, analysis, classes, learner, resources, views, words

PARTS = {"encoder": "Encoder", "fc_mu": "Encoder → μ", "fc_logvar": "Encoder → log σ²",
         "fc_decode": "Decoder", "unflatten": "Decoder", "decoder": "Decoder"}


def markdown_table(rows: list[dict]) -> str:
    """The layer table as Markdown: st.dataframe would import pandas, about 0.5 s of a cold start."""
    lines = ["| part | layer | settings | output shape | parameters |", "| --- | --- | --- | --- | ---: |"]
    for r in rows:
        part = PARTS.get(r["name"].split(".")[0], "")
        shape = " × ".join(map(str, r["output_shape"]))
        settings = f"`{r['details']}`" if r["details"] else ""
        lines.append(f"| {part} | {r['layer']} | {settings} | {shape} | {r['params']:,} |")
    return "\n".join(lines)


st.title("VAE Studio")
st.markdown("Learn how a **variational autoencoder** works by training one on handwritten digits "
            "(MNIST) and taking it apart.")
views.lesson_recap()  # after a lesson's Finish, until dismissed

# (title, explanation, the page that shows it, link label, icon), laid out three then two per row.
IDEAS = [
    ("1 · Encode to μ and σ²",
     "The **encoder** squeezes a 28×28 image into a few numbers. Unlike a plain autoencoder it "
     "does not output one point but a **mean μ and a variance σ²** for each latent dimension: "
     "a small cloud of places where the image could live.",
     "pages/latent_map.py", "See where each digit lands", ":material/scatter_plot:"),
    ("2 · Sample, then decode",
     "Training draws a code from that cloud with the **reparameterisation trick**, "
     "z = μ + σ·ε with ε ~ N(0, I), so the randomness sits in ε and gradients still reach μ and σ. "
     "The **decoder** turns z back into a probability for each of the 784 pixels.",
     "pages/draw.py", "Draw a digit and watch it reconstructed", ":material/draw:"),
    ("3 · Generate new digits",
     "Because training keeps the codes close to a standard normal N(0, I), decoding a random z "
     "from that normal gives a new, plausible digit, and walking between two codes morphs one "
     "digit into another.",
     "pages/generate.py", "Sample and interpolate", ":material/auto_awesome:"),
    ("The loss: reconstruction + KL",
     "The model minimises the **negative ELBO** (evidence lower bound), in nats per image: the "
     "**reconstruction** term, a binary cross-entropy (BCE) saying how badly the decoded pixels "
     "match the input, plus the **KL divergence** from the encoder's cloud to N(0, I), the cost of "
     "the code. Lower is better; it bounds −log p(x) from above.",
     "pages/train.py", "Watch both terms while a model trains", ":material/model_training:"),
    ("What β does",
     "A β-VAE weights the KL term by **β**. With β > 1 codes are pulled harder towards N(0, I): "
     "a smoother latent space and better samples, but blurrier reconstructions. With β < 1 "
     "reconstructions sharpen while the latent space gets gaps that decode to nonsense. β = 1 is "
     "the true ELBO.",
     "pages/train.py", "Train with your own β", ":material/tune:"),
]

def lessons_section() -> None:
    """Start a lesson (where this learner left it), or, for a teacher, start a class."""
    lessons, problems = learner.lessons()
    if not lessons and not problems:
        return
    st.header("Follow a lesson", divider="gray")
    start, teacher = st.columns([3, 2], gap="large")
    with start:
        st.markdown("A lesson walks you through the ideas above with a task on each page; the panel in the "
                    "sidebar says what to do next and ticks each step off when you have done it.")
        if "vae-basics" in lessons and st.button("Start the lesson", type="primary", icon=":material/school:",
                                                 key="home_start_lesson"):
            views.open_lesson("vae-basics", learner.left_at("vae-basics"))
        views.lesson_list(lessons, problems)
    with teacher, st.expander("For teachers: start a class", icon=":material/co_present:",
                              expanded=classes.teaches()):
        if lessons:
            class_form(lessons)


def class_form(lessons: dict) -> None:
    """Start a class (its name, lesson, run size and runs per learner) and show its two links."""
    with st.form("home_class"):
        name = st.text_input("Class name", max_chars=NAME_CHARS, placeholder="Week 3", key="home_class_name")
        ids = list(lessons)
        lesson_id = st.selectbox("Lesson", ids, index=ids.index("vae-basics") if "vae-basics" in ids else 0,
                                 format_func=lambda i: lessons[i].title, key="home_class_lesson")
        run_size = st.selectbox("Run size", list(RUN_SIZES), format_func=lambda s: RUN_SIZES[s].label,
                                key="home_class_run_size", help="Every learner's run trains this much.")
        runs_each = st.number_input("Runs per learner, in all", 1, RUNS_EACH, 3, key="home_class_runs_each",
                                    help="Each learner may have one run in the queue at a time, and this many in all.")
        own_data = st.checkbox("Learners may train on other datasets and upload their own images",
                               key="home_class_own_data",
                               help="Off: every run trains on MNIST, as the lessons do. On: the Train page offers "
                                    "scikit-learn's digits, the datasets added on this server, and a zip upload.")
        started = st.form_submit_button("Start the class", type="primary", icon=":material/play_arrow:")
    if started:
        try:
            classes.start(name, lesson_id, run_size, runs_each, own_data)
        except (ClassError, QueueError) as e:
            st.error(str(e), icon=":material/error:")
            return
        st.rerun()  # the navigation lists the teacher's view from now on
    taught = classes.teaching()
    if taught is not None:
        classes.show_links(taught)
        st.page_link(PAGES["teacher"].file, label="Open the teacher's view", icon=":material/co_present:")


lessons_section()

for row in (IDEAS[:3], IDEAS[3:]):
    for column, (title, text, page, label, icon) in zip(st.columns(len(row), gap="medium"), row):
        with column:
            st.subheader(title, divider="gray")
            st.markdown(text)
            st.page_link(page, label=label, icon=icon)

ckpt = resources.active()
st.header(f"The active model: {ckpt.name}", divider="gray")

test, val = ckpt.metrics.test, ckpt.metrics.val
def watch_film() -> None:
    st.session_state["map_view"] = "film"


if test is not None:
    cols = st.columns(5)
    cols[0].metric("Test −ELBO", f"{test.loss:.2f}", help="nats per image; lower is better")
    cols[1].metric("Reconstruction (BCE)", f"{test.bce:.2f}")
    cols[2].metric("KL", f"{test.kl:.2f}")
    if val is not None:
        cols[3].metric("Validation −ELBO", f"{val.loss:.2f}")
    cols[4].metric("Active dimensions", f"{analysis.active_units(ckpt)} of {ckpt.config.latent_dim}",
                   help="Latent dimensions the model uses (their posterior mean varies over the digits); "
                        "the others collapsed to the prior, KL ≈ 0.")
if ckpt.film is not None:
    st.caption(f"This model uses {analysis.active_units(ckpt)} of its {ckpt.config.latent_dim} latent dimensions. "
               "Its training film shows how that came about, frame by frame.")
    if st.button("Watch it learn", icon=":material/movie:", key="home_film", on_click=watch_film):
        st.switch_page("pages/latent_map.py")
if ckpt.history.epochs:
    access.chart(analysis.loss_curves(ckpt), words.loss_history(ckpt.history), key="home_curves")

rows = analysis.layers(ckpt)
total = sum(r["params"] for r in rows)
st.subheader("Architecture", divider="gray")
st.caption(f"{ckpt.config.arch} VAE, latent size {ckpt.config.latent_dim}, {total:,} parameters. "
           "Read off the model by running one image through it.")
st.markdown(markdown_table(rows))
