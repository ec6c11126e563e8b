"""VAE Studio's server: ``python -m studio.serve [the flags of streamlit run]`` is ``streamlit run
app.py`` with the checkpoint folder's queue of runs started first. Streamlit runs app.py only when
a browser connects, and has no start hook: served by ``streamlit run`` alone, a server restarted
with runs queued resumes them when a first page is opened."""

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

from studio import runs
from vae.settings import ROOT


def main() -> None:
    runs.start()  # the queue lives in this process's resource cache, where the pages find it
    # Importing `studio` is what leaves Streamlit's legacy multipage mode (studio/__init__.py); here
    # that import came before the server, which would set the mode afresh: set it as the import would.
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
