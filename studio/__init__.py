"""The app side of VAE Studio: what the pages share, one concern per module. The pages (``pages/``)
are thin views over these; the modelling itself is in ``vae``.

    resources  the device, MNIST, models on disk and the active one; ``per_model`` caching
    analysis   what pages derive from a model: encodings, projections, the vote, samplers, Inside
    films      a model's training film: layouts, neighbour agreement, the player's figures
    identity   who this browser is: a learner's lasting token, kept in a cookie
    runs       the class's queue of runs and classroom, who this browser is to them, the run a page follows
    live       a run as every watching session sees it: snapshots, figures and model, shared
    gate       page model work while a run trains on this server's CPU
    board      the rate-distortion board's points
    learner    where a learner is in a lesson, what they have done, class mode: kept by the server
    figures    every Plotly figure
    views      widgets more than one page draws: the film player, the lesson panel, map notes
    serve      the server: ``streamlit run app.py`` with the queue started first
    hall       a lecture hall on one machine: a Ray head, app servers and the balancer (``make hall``)

The package leaves Streamlit's legacy multipage mode (below) the moment anything imports it.
"""

from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    # A `pages/` folder beside the entry point makes Streamlit start in its legacy multipage mode,
    # which it leaves only at the first st.navigation call: the first script run of a fresh server
    # lists the folder's files as the navigation and runs the page the URL names (/draw:
    # pages/draw.py) without app.py. Every page and app.py import this package before their other
    # work, so whichever runs first leaves that mode for good and starts its run again: through
    # app.py's st.navigation, on the page the URL asked for (a page's hash is its URL path either
    # way). An import runs this once per server, which is all it takes: the mode is the server's.
    import streamlit as st

    PagesManager.uses_pages_directory = False
    st.rerun()
