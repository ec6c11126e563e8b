"""Who this browser is: a learner's lasting token, which the browser keeps in a cookie so that a
reload or a closed tab finds the same learner on the server (``classroom.classes``). Never in the
URL: a forwarded link would hand one's identity to another.

Streamlit reads the cookies a browser sent when it connected (``st.context.cookies``) but cannot set
one; a tiny component does, in the page, for the next visit.
"""

from __future__ import annotations

import streamlit as st

from classroom.classes import TOKEN, new_token

COOKIE = "vae_studio_learner"
TOKEN_KEY = "learner_token"  # session_state: this browser session's token, from the cookie or new
COOKIE_MAX_AGE_S = 365 * 24 * 3600

# The component renders nothing: it sets the cookie it is given, for the whole site, for a year.
COOKIE_KEEPER = "vae_studio_learner_cookie"  # the component's name, as a page's messages carry it
_cookie_keeper = st.components.v2.component(COOKIE_KEEPER, js="""
export default function ({ data }) {
  document.cookie = `${data.name}=${data.token}; path=/; max-age=${data.max_age}; SameSite=Lax`;
}
""")


def cookie() -> str | None:
    """The token in the cookie the browser sent when it connected, if it is one this server gives out
    (AppTest's runtime, which has no browser, answers with a stand-in that is no string)."""
    sent = st.context.cookies.get(COOKIE)
    return sent if isinstance(sent, str) and TOKEN.fullmatch(sent) else None


def token() -> str:
    """This browser's learner token: the cookie's, else a new one kept for this browser session
    (``keep`` stores it in the cookie)."""
    if TOKEN_KEY not in st.session_state:
        st.session_state[TOKEN_KEY] = cookie() or new_token()
    return st.session_state[TOKEN_KEY]


def keep() -> None:
    """Have the browser keep this token for its next visit; called in every script run (the
    element must stay in the page until the browser has run it) until a browser session starts
    with the cookie set, when there is nothing to do."""
    if cookie() != token():
        _cookie_keeper(key="learner_cookie", data={"name": COOKIE, "token": token(), "max_age": COOKIE_MAX_AGE_S})
