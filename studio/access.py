"""What makes every page usable by every learner, whatever they read it with: contrast, keyboard
focus, narrow screens and touch (WCAG 2.1 AA). One place for the app-wide styles and the small
in-page script that Streamlit has no option for; each page gives its images alt text and its charts
a sentence in words."""

from __future__ import annotations

import contextlib

import streamlit as st

# Narrower than this (a tablet in portrait, 820 px), an open sidebar would take 300 px from the page:
# it starts closed there, and opens over the page instead of squeezing it.
NARROW_PX = 1100
# A chart with a column and a number per latent dimension needs this width to print 32 numbers apart.
WIDE_CHART_PX = 720

STYLE = f"""<style>
/* Streamlit fades captions to 60% opacity: grey at 3.9:1 on white, under WCAG's 4.5:1 for text.
   At 80% they read at 7:1 and still look secondary. */
[data-testid='stCaptionContainer'] {{ opacity: 0.8 !important; }}
/* Each heading's link to itself is a keyboard stop of its own (Inside's "Draw another ε" was 32 Tabs
   down): hidden, so no longer one. */
[data-testid='stHeaderActionElements'] a[href^='#'] {{ display: none !important; }}
/* Words break between letters in narrow columns ("Reconstruct ion"); only a word longer than its
   column may still wrap. */
[data-testid='stImageCaption'], [data-testid='stMarkdownContainer'], [data-testid='stMetricLabel'] p {{
  word-break: normal !important; overflow-wrap: break-word !important; }}
/* A button's label wraps instead of ending in an ellipsis ("Draw an…"). */
[data-testid='stBaseButton-secondary'] p, [data-testid='stBaseButton-primary'] p {{
  white-space: normal !important; }}
/* What only a narrow screen shows: the lesson's step above the page while the sidebar is closed. */
.st-key-narrow_only {{ display: none; }}
@media (max-width: {WIDE_CHART_PX - 1}px) {{
  [class*='st-key-wide_'] {{ overflow-x: auto; }}
  [class*='st-key-wide_'] [data-testid='stElementContainer'] {{ min-width: {WIDE_CHART_PX}px; }}
}}
@media (max-width: {NARROW_PX - 1}px) {{
  .st-key-narrow_only {{ display: block; }}
  section[data-testid='stSidebar'][data-collapsed='false'] {{
    position: fixed !important; z-index: 999990; height: 100vh; box-shadow: 0 0 24px rgba(0,0,0,.35); }}
}}
</style>"""

# Runs in the page (not an iframe) once per script run. On a touch screen it lets the first tap choose a
# chart's point. On a narrow screen it closes the sidebar on the first page a browser tab opens, as a
# phone layout does. After a page change it moves keyboard focus to the new page's heading, as a screen
# reader expects of a new page, instead of leaving it on the navigation link.
_page_script = st.components.v2.component("vae_studio_page", js=f"""
export default function ({{ data }}) {{
  if (!window.vaeStudioTouchHover) {{
    // Plotly selects on a click the point under its last hover: a finger has no hover, so the first tap
    // on a map only showed a label. A touch first moves Plotly's hover there, and the tap selects.
    window.vaeStudioTouchHover = true;
    document.addEventListener('touchstart', (event) => {{
      const target = event.target.closest?.('.js-plotly-plot .nsewdrag');
      if (!target || event.touches.length !== 1) return;
      const touch = event.touches[0];
      const at = {{clientX: touch.clientX, clientY: touch.clientY, bubbles: true}};
      target.dispatchEvent(new MouseEvent('mousemove', at));
    }}, {{capture: true, passive: true}});
  }}
  if (!sessionStorage.getItem('vae_studio_sidebar_checked')) {{
    sessionStorage.setItem('vae_studio_sidebar_checked', '1');
    if (window.innerWidth < {NARROW_PX}) {{
      document.querySelector("[data-testid='stSidebarCollapseButton'] button[aria-expanded='true']")?.click();
    }}
  }}
  const last = window.vaeStudioPage;  // undefined on a fresh load, which keeps the browser's own focus
  window.vaeStudioPage = data.page;
  if (last !== undefined && last !== data.page) {{
    const focusHeading = (tries) => {{
      const heading = document.querySelector("[data-testid='stMain'] h1");
      if (!heading) {{ if (tries > 0) setTimeout(() => focusHeading(tries - 1), 100); return; }}
      heading.setAttribute('tabindex', '-1');
      heading.focus({{preventScroll: true}});
    }};
    focusHeading(30);
  }}
}}
""")


def style_page(page_id: str) -> None:
    """The app-wide styles, and the script that sets focus and the sidebar for ``page_id``."""
    st.html(STYLE)
    _page_script(key="page_script", data={"page": page_id})


def chart(figure, in_words: str, *, key: str, toolbar: bool = False, wide: bool = False, **options):
    """``st.plotly_chart`` with what a learner would read off the chart in a sentence below it (its text
    alternative, for a screen reader and for anyone), and Plotly's toolbar only where zooming helps:
    each toolbar is eight more Tab stops. A ``wide`` chart (a column per latent dimension, with its
    numbers) keeps its width on a phone and scrolls sideways, rather than printing its numbers over
    each other."""
    with st.container(key=f"wide_{key}") if wide else contextlib.nullcontext():
        event = st.plotly_chart(figure, key=key, config={"displayModeBar": toolbar, "displaylogo": False}, **options)
    st.caption(f":material/description: {in_words}")
    return event
