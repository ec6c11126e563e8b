"""Home: what a VAE is, each idea linked to the page that shows it, and the active model's make-up."""

import streamlit as st

import studio
from vae.plots import loss_figure
from vae.summary import layer_table

PARTS = {"encoder": "Encoder", "fc_mu": "Encoder → μ", "fc_logvar": "Encoder → log σ²",
         "fc_decode": "Decoder", "decoder": "Decoder"}

st.title("VAE Studio")
st.markdown("Learn how a **variational autoencoder** works by training one on handwritten digits "
            "(MNIST) and taking it apart.")

ideas = st.columns(3, gap="medium")
with ideas[0]:
    st.subheader("1 · Encode to μ and σ²", divider="gray")
    st.markdown(
        "The **encoder** squeezes a 28×28 image into a few numbers. Unlike a plain autoencoder it "
        "does not output one point but a **mean μ and a variance σ²** for each latent dimension: "
        "a small cloud of places where the image could live."
    )
    st.page_link("pages/latent_map.py", label="See where each digit lands", icon=":material/scatter_plot:")
with ideas[1]:
    st.subheader("2 · Sample, then decode", divider="gray")
    st.markdown(
        "Training draws a code from that cloud with the **reparameterisation trick**, "
        "z = μ + σ·ε with ε ~ N(0, I), so the randomness sits in ε and gradients still reach μ and σ. "
        "The **decoder** turns z back into a probability for each of the 784 pixels."
    )
    st.page_link("pages/draw.py", label="Draw a digit and watch it reconstructed", icon=":material/draw:")
with ideas[2]:
    st.subheader("3 · Generate new digits", divider="gray")
    st.markdown(
        "Because training keeps the codes close to a standard normal N(0, I), decoding a random z "
        "from that normal gives a new, plausible digit, and walking between two codes morphs one "
        "digit into another."
    )
    st.page_link("pages/generate.py", label="Sample and interpolate", icon=":material/auto_awesome:")

loss_col, beta_col = st.columns(2, gap="medium")
with loss_col:
    st.subheader("The loss: reconstruction + KL", divider="gray")
    st.markdown(
        "The model minimises the **negative ELBO** (evidence lower bound), in nats per image: the "
        "**reconstruction** term, a binary cross-entropy (BCE) saying how badly the decoded pixels "
        "match the input, plus the **KL divergence** from the encoder's cloud to N(0, I), the cost of "
        "the code. Lower is better; it bounds −log p(x) from above."
    )
    st.page_link("pages/train.py", label="Watch both terms while a model trains", icon=":material/model_training:")
with beta_col:
    st.subheader("What β does", divider="gray")
    st.markdown(
        "A β-VAE weights the KL term by **β**. With β > 1 codes are pulled harder towards N(0, I): "
        "a smoother latent space and better samples, but blurrier reconstructions. With β < 1 "
        "reconstructions sharpen while the latent space gets gaps that decode to nonsense. β = 1 is "
        "the true ELBO."
    )
    st.page_link("pages/train.py", label="Train with your own β", icon=":material/tune:")

model = studio.active_model()
st.header(f"The active model: {studio.active_checkpoint().stem}", divider="gray")

test, val = model.metrics.get("test", {}), model.metrics.get("val", {})
if test:
    cols = st.columns(4)
    cols[0].metric("Test −ELBO", f"{test['loss']:.2f}", help="nats per image; lower is better")
    cols[1].metric("Reconstruction (BCE)", f"{test['bce']:.2f}")
    cols[2].metric("KL", f"{test['kl']:.2f}")
    if val:
        cols[3].metric("Validation −ELBO", f"{val['loss']:.2f}")
if model.history.get("epochs"):
    st.plotly_chart(loss_figure(model.history), key="home_curves")

rows = layer_table(model)
total = sum(r["params"] for r in rows)
st.subheader("Architecture", divider="gray")
st.caption(f"{model.config.arch} VAE, latent size {model.latent_dim}, {total:,} parameters. "
           "Read off the model by running one image through it.")
st.dataframe(
    [{"part": PARTS.get(r["name"].split(".")[0], ""), "layer": r["layer"], "settings": r["details"],
      "output shape": " × ".join(map(str, r["output_shape"])), "parameters": r["params"]} for r in rows],
    hide_index=True,
    height="content",
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
)
