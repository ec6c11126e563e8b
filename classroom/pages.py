"""The app's pages, in the navigation's order: the one table that app.py builds its navigation from,
that a lesson step's ``page`` is checked against and that the test harness opens pages by. Free of
Streamlit, so that the lessons and the harness read it without starting the app."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    id: str  # the script's stem: its URL path, and what a lesson step names
    title: str  # the navigation's label
    icon: str  # a Material icon, as st.Page takes it
    teacher_only: bool = False  # listed only for a class's teacher (who opened the teacher's link)

    @property
    def file(self) -> str:
        """The page's script, relative to the project root."""
        return f"pages/{self.id}.py"


PAGES = {page.id: page for page in (
    Page("home", "Home", ":material/home:"),
    Page("train", "Train", ":material/model_training:"),
    Page("draw", "Draw", ":material/draw:"),
    Page("inside", "Inside", ":material/biotech:"),
    Page("latent_map", "Latent map", ":material/scatter_plot:"),
    Page("generate", "Generate", ":material/auto_awesome:"),
    Page("compare", "Compare", ":material/compare:"),
    Page("board", "Board", ":material/leaderboard:"),
    Page("teacher", "Teacher", ":material/co_present:", teacher_only=True),
)}
