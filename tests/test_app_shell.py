"""The app shell: entry point, sidebar model choice and card, the Home page, and vae.summary."""

import json
import shutil

import pytest

import vae
from classroom.pages import PAGES
from harness import ROOT
from harness.apptest import run_app
from studio import resources, runs
from vae.settings import configure
from vae.summary import layer_table


def test_home_renders_with_the_bundled_model_and_the_sidebar_card(checkpoint_dir):
    at = run_app()
    ckpt = vae.load_checkpoint(checkpoint_dir / "default.pt")
    card = {m.label: m.value for m in at.sidebar.metric}
    assert card["Latent size"] == str(ckpt.config.latent_dim)
    assert card["Test −ELBO"] == f"{ckpt.metrics.test.loss:.1f}"
    assert card["β (beta)"] == f"{ckpt.train_config.beta:g}"
    assert card["Epochs"] == str(len(ckpt.history.epochs))
    assert any(f"**{ckpt.config.arch}**" in c.value for c in at.sidebar.caption)
    assert any("Device: **CPU**" in c.value or "CUDA" in c.value for c in at.sidebar.caption)
    assert at.sidebar.selectbox(key=resources.ACTIVE_KEY).value == str(checkpoint_dir / "default.pt")

    assert at.title[0].value == "VAE Studio"
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    ideas = {page for label, page in links.items() if "steps)" not in label}  # the lessons' links are their own
    assert ideas == {"train", "draw", "latent_map", "generate"}
    assert links["VAE basics (11 steps)"] == "draw" and links["What β does (4 steps)"] == "compare"
    metrics = {m.label: m.value for m in at.main.metric}
    assert metrics["Test −ELBO"] == f"{ckpt.metrics.test.loss:.2f}"
    assert {"Reconstruction (BCE)", "KL"} <= metrics.keys()
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    fine_tune = ckpt.train_config.fine_tune_start
    assert len(curves.get("shapes", [])) == (0 if fine_tune is None else 3), "its IW epochs are shaded"
    table = next(m.value for m in at.main.markdown if m.value.startswith("| part |"))
    header, _rule, *body = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    rows = [dict(zip(header, cells, strict=True)) for cells in body]
    assert sum(int(r["parameters"].replace(",", "")) for r in rows) == sum(p.numel() for p in ckpt.model.parameters())
    assert rows[-1]["output shape"] == "1 × 28 × 28"
    assert all(r["part"] for r in rows), "every layer is named as encoder or decoder"


def test_the_page_table_names_each_page_file_once():
    """app.py's navigation, the lessons and the harness all read the table: a page file outside it
    would be unreachable, a row without its file would break every page."""
    assert sorted(ROOT / page.file for page in PAGES.values()) == sorted((ROOT / "pages").glob("*.py"))


def test_train_page_renders_idle(run_queue):
    at = run_app("pages/train.py")
    assert at.title[0].value == "Train a VAE"
    assert any("No runs yet" in i.value for i in at.info)
    assert any(c.value == ":material/dns: Runs train on this server." for c in at.sidebar.caption)
    assert at.text_input(key="train_name").value == "model-1"


def test_active_model_persists_across_pages(checkpoint_dir):
    shutil.copy(checkpoint_dir / "default.pt", checkpoint_dir / "second.pt")
    at = run_app()
    at.sidebar.selectbox(key=resources.ACTIVE_KEY).set_value(str(checkpoint_dir / "second.pt")).run()
    for page in ("pages/train.py", "pages/home.py"):
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert at.session_state[resources.ACTIVE_KEY] == str(checkpoint_dir / "second.pt")
    assert any(h.value.startswith("The active model: second") for h in at.header)


@pytest.mark.parametrize("content", [b"not a checkpoint at all", "truncated"])
def test_a_bad_checkpoint_shows_a_message_not_a_traceback(checkpoint_dir, content):
    bad = checkpoint_dir / "broken.pt"
    bad.write_bytes((checkpoint_dir / "default.pt").read_bytes()[:100_000] if content == "truncated" else content)
    at = run_app()
    at.sidebar.selectbox(key=resources.ACTIVE_KEY).set_value(str(bad)).run()
    assert not at.exception, at.exception
    assert at.sidebar.error[0].value.startswith("This model cannot be used: broken.pt ")
    assert "could not be loaded: broken.pt " in at.main.error[0].value
    assert at.title[0].value == "VAE Studio", "the explanation still shows"
    at.switch_page("pages/train.py").run()
    assert not at.exception and at.title[0].value == "Train a VAE", "training needs no active model"


def test_an_empty_checkpoint_folder_asks_for_training(checkpoint_dir):
    (checkpoint_dir / "default.pt").unlink()
    at = run_app()
    assert "No models yet" in at.sidebar.warning[0].value
    assert "No checkpoint" in at.main.error[0].value


@pytest.mark.parametrize("arch", ["conv", "tutorial"])
def test_layer_table_follows_the_forward_pass(arch):
    model = vae.ConvVAE(vae.VAEConfig(arch=arch, latent_dim=8))
    rows = layer_table(model)
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    names = [r["name"] for r in rows]
    first_decoder_layer = next(n for n in names if n.startswith("decoder"))
    assert names.index("fc_mu") < names.index("fc_logvar") < names.index(first_decoder_layer)
    assert dict(zip(names, (r["output_shape"] for r in rows)))["fc_mu"] == (8,)
    assert rows[-1]["output_shape"] == (1, 28, 28)
    assert model.training, "the model's mode is restored"


def test_a_damaged_queue_record_and_an_unreachable_cluster_are_said_in_the_sidebar(checkpoint_dir):
    (checkpoint_dir / ".runs").mkdir()
    (checkpoint_dir / ".runs" / "000001.json").write_text("{not json")
    configure(ray_address="127.0.0.1:9")  # nothing listens on the discard port
    try:
        at = run_app("pages/train.py")
        warnings = " ".join(w.value for w in at.sidebar.warning)
        assert "000001.json" in warnings and "damaged" in warnings
        assert "The Ray cluster at 127.0.0.1:9 could not be reached" in warnings
        assert "runs execute on this server" in warnings
        assert any(c.value == ":material/dns: Runs train on this server." for c in at.sidebar.caption)
        assert any("No runs yet" in i.value for i in at.info), "the app starts, and the queue works here"
    finally:
        runs.close()
