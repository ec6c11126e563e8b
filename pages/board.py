"""The class's board: every model in the checkpoint folder, and the runs training now, on the
rate-distortion plane, and in a table below it; a click on a point or a row makes a model active or
opens it on Compare."""

from operator import attrgetter

import streamlit as st

from classroom.board import UNTRAINED_FACTOR, BoardPoint, untrained_limit
from studio import access, board, live, resources, runs, words
from studio.figures import board_figure

CHOSEN_KEY = "board_chosen"  # session_state: the name of the model last clicked, on the chart or in the table

st.title("Rate against distortion")
st.caption("Every model in the checkpoint folder where it stands on the test set: rate is the KL its encoder pays "
           "to describe a digit, distortion the BCE of the reconstruction. Lower left is better; a larger β "
           "buys a lower rate with a higher distortion along a frontier; on each faint diagonal the −ELBO "
           "(rate + distortion) is the same.")


@st.fragment(run_every=live.LIVE_REFRESH_S * 3 if runs.running() else None)
def show_board() -> None:
    """The plane, with the runs training now moving along their trails as their epochs end, and every
    point in a table, which keyboard and touch can sort and choose from."""
    points, problems = board.model_points()
    running = board.running_points()
    if not points + running:
        st.info("No model with test metrics yet: train one on the Train page.", icon=":material/scatter_plot:")
        return
    planes = sorted({p.dataset for p in points + running}, key=lambda key: (key != "mnist", key))
    plane = st.radio("Dataset", planes, horizontal=True, key="board_dataset", format_func=board.dataset_name,
                     help="A nat of one dataset is not a nat of another: each dataset's models have a plane "
                          "of their own.") if len(planes) > 1 else planes[0]
    points = [p for p in points if p.dataset == plane]
    running = [p for p in running if p.dataset == plane]
    everything = sorted([*points, *running], key=attrgetter("negative_elbo", "name"))
    limit = untrained_limit(everything)
    untrained = [p for p in points if p.negative_elbo > limit]
    hide = bool(untrained) and st.toggle(
        "Hide untrained runs", value=True, key="board_hide_untrained",
        help=f"An untrained run is a model whose −ELBO is more than {UNTRAINED_FACTOR:g}× the best one's (here over "
             f"{limit:.0f} nats): it has barely started to learn, and would squeeze the others into a corner. Runs "
             "training now are always shown; the table below lists every model.")
    shown = [p for p in points if p not in untrained] if hide else points
    # Each run's owner beside its name (studio.board.on_chart): a click gives that name back.
    event = access.chart(board_figure(board.on_chart(shown), board.on_chart(running), hidden=len(points) - len(shown)),
                         words.board(board.on_chart([*shown, *running])), key="board_chart", on_select="rerun",
                         selection_mode="points")
    if running:
        names = ", ".join(point.name for point in board.on_chart(running))
        st.caption(f"Training now: {names}. Each point moves as its run's epochs end (dotted: the way it came).")
    for problem in problems:
        st.warning(f"Left out: {problem}", icon=":material/warning:")
    chosen_here = st.container()
    rows = points_table(everything)
    note_choice("board_chart", board.chosen(everything, clicked_name(event)))
    note_choice("board_table", everything[rows[0]].name if rows else None)
    chosen = next((p for p in everything if p.name == st.session_state.get(CHOSEN_KEY)), None)
    if chosen is not None:
        with chosen_here:
            act_on(chosen)


def points_table(everything: list[BoardPoint]) -> list[int]:
    """Every point, the untrained and those on one place too, as a table with one row each; returns the
    rows chosen."""
    rows = [{"Name": p.name, "Owner": p.owner or "—", "β": p.beta, "Latent size": p.latent_dim, "Rate (KL)": p.rate,
             "Distortion (BCE)": p.distortion, "−ELBO": p.negative_elbo, "Training": p.training}
            for p in everything]
    nats = st.column_config.NumberColumn(format="%.2f", help="Nats per test image")
    event = st.dataframe(rows, key="board_table", hide_index=True, on_select="rerun", selection_mode="single-row",
                         height=min(36 + 35 * len(rows), 390), width="stretch",
                         column_config={"Owner": st.column_config.TextColumn(
                                            help="Who queued its run; — for a model no run of this server made "
                                                 "(a bundled one, one from the command line)"),
                                        "β": st.column_config.NumberColumn(format="%g"),
                                        "Rate (KL)": nats, "Distortion (BCE)": nats, "−ELBO": nats,
                                        "Training": st.column_config.CheckboxColumn(help="Still training")})
    return [row for row in event.selection.rows if row < len(everything)]


def clicked_name(event) -> str | None:
    """The name of the point a click on the chart selected, from its customdata [name] (a list, or an
    object by index); None for none, or a click on a trail, which has none."""
    data = [p["customdata"] for p in event["selection"]["points"] if p.get("customdata")]
    if not data:
        return None
    return data[0][0] if isinstance(data[0], list) else data[0]["0"]


def note_choice(key: str, name: str | None) -> None:
    """Keep ``name`` as the board's choice when the selection of the chart or the table (``key``) has
    just changed to it: the latest click wins, on either."""
    seen = f"{key}_seen"
    if name != st.session_state.get(seen):
        st.session_state[seen] = name
        if name is not None:
            st.session_state[CHOSEN_KEY] = name


def act_on(point: BoardPoint) -> None:
    """What a click on a point or a row offers: make the model active, or open it on Compare."""
    if point.training:
        st.info(f"{point.name} is still training: it can be chosen once its run ends.", icon=":material/hourglass_top:")
        return
    st.markdown(f"**{point.name}**: β = {point.beta:g}, latent size {point.latent_dim}, rate {point.rate:.2f} + "
                f"distortion {point.distortion:.2f} = −ELBO {point.negative_elbo:.2f} nats")
    active, compare = st.columns(2)
    active.button("Make it the active model", icon=":material/check:", key="board_activate",
                  on_click=st.session_state.update, args=({resources.ACTIVE_KEY: str(point.path)},))
    if compare.button("Open it on Compare", icon=":material/compare:", key="board_compare"):
        st.session_state["compare_a"] = str(point.path)
        st.switch_page("pages/compare.py")


show_board()
st.caption("A plain autoencoder is not on the board: its code is a point, not a distribution, so it has no rate "
           "to plot, only a distortion.")
