"""The class's board: every model in the checkpoint folder, and the runs training now, on the
rate-distortion plane; a click makes a model active or opens it on Compare."""

import streamlit as st

from studio import board, live, resources, runs
from studio.figures import board_figure

st.title("Rate against distortion")
st.caption("Every model in the checkpoint folder where it stands on the test set: rate is the KL its encoder pays "
           "to describe a digit, distortion the BCE of the reconstruction. Lower left is better; a larger β "
           "buys a lower rate with a higher distortion along a frontier; on each faint diagonal the −ELBO "
           "(rate + distortion) is the same.")


@st.fragment(run_every=live.LIVE_REFRESH_S * 3 if runs.running() else None)
def show_board() -> None:
    """The plane, with the runs training now moving along their trails as their epochs end."""
    points, problems = board.model_points()
    running = board.running_points()
    if not points and not running:
        st.info("No model with test metrics yet: train one on the Train page.", icon=":material/scatter_plot:")
        return
    event = st.plotly_chart(board_figure(points, running), key="board_chart", on_select="rerun",
                            selection_mode="points")
    if running:
        names = ", ".join(point.name for point in running)
        st.caption(f"Training now: {names}. Each point moves as its run's epochs end (dotted: the way it came).")
    for problem in problems:
        st.warning(f"Left out: {problem}", icon=":material/warning:")
    chosen = [p["customdata"] for p in event["selection"]["points"] if p.get("customdata")]
    if chosen:
        name = chosen[0][0] if isinstance(chosen[0], list) else chosen[0]["0"]
        act_on(next((p for p in points if p.name == name), None), name)


def act_on(point, name: str) -> None:
    """What a click on a point offers: make the model active, or open it on Compare."""
    if point is None:
        st.info(f"{name} is still training: it can be chosen once its run ends.", icon=":material/hourglass_top:")
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
