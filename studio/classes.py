"""This browser's part in a class: a student, the teacher, or neither (a lone learner).

The URL's ``?class=<id>`` (or the server's ``VAE_STUDIO_CLASS``, which overrides any URL) makes a
visitor a student, who joins under a name before any page opens; ``?class=<id>&teacher=<secret>``
makes them the class's teacher. Which class a student is in is the server's record
(``classroom.classes``), not the URL's: a link edited to another class changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib

import streamlit as st

from classroom.classes import NAME_CHARS, Class, ClassError
from classroom.queue import QueueError
from studio import learner, runs
from studio.hall import network_host
from vae.settings import settings

TEACHER_KEY = "class_teacher"  # session_state: the id of the class this browser teaches, once its link was checked
NOTICE_KEY = "class_notice"  # session_state: a line for the badge to show once (a run may switch pages first)
TEACHER_REFRESH_S = 5  # the teacher's view's cadence: a store read and the queue's runs, no model work
MOVE_CHECK_S = TEACHER_REFRESH_S  # a student's browser checks for a teacher's move as often: one store read


def enter() -> None:
    """Settle this browser's part in a class before any page runs: the teacher's link checked, a
    student without a name asked for one (nothing else shows until they have joined), a URL that
    names another class than the server's answered with a notice. Every problem is said in words."""
    try:
        if "teacher" in st.query_params:
            teach(sent_to(), st.query_params["teacher"])
        elif not teaches():
            take_part()
    except ClassError as e:
        st.error(str(e), icon=":material/error:")
        st.stop()
    except QueueError as e:  # the store cannot be read: the pages still work, for a lone learner
        st.warning(f"Classes cannot be joined here now: {e}", icon=":material/warning:")


def sent_to() -> int | None:
    """The class this visitor was sent to: the server's ``VAE_STUDIO_CLASS``, else the URL's, else
    None; ClassError for one that is not a class number."""
    forced = settings().class_id
    text = forced or st.query_params.get("class")
    if text is None:
        return None
    if not text.isdigit():
        raise ClassError(f"This server's VAE_STUDIO_CLASS is “{text}”, not a class number." if forced else
                         f"The link's class “{text}” is not a class number: ask your teacher for the class link.")
    return int(text)


def teach(class_id: int | None, secret: str) -> None:
    """Make this browser the class's teacher if ``secret`` is its teacher's; ClassError if not."""
    if class_id is None:
        raise ClassError("A teacher's link names its class (?class=<id>&teacher=…): copy it again from Home.")
    if not learner.room().is_teacher(class_id, secret):
        raise ClassError("This teacher's link is not right for this class: copy it again from Home, where the "
                         "class was started. A student's link has no teacher part.")
    st.session_state[TEACHER_KEY] = class_id


def take_part() -> None:
    """A student stays in the class the server has them in, whatever the URL says (unless the server
    was started for another class: then they join that one); a visitor sent to a class joins it;
    anyone else is a lone learner (so is a student whose class the server no longer has: its damaged
    record was set aside)."""
    mine, forced = learner.my_class(), settings().class_id
    if mine is not None and forced in ("", str(mine.id)):
        in_url = st.query_params.get("class")
        if in_url is not None and in_url != str(mine.id):
            st.session_state[NOTICE_KEY] = (f"You are a student of “{mine.name}” on this server: the link's "
                                            f"class “{in_url}” changes nothing.")
            del st.query_params["class"]  # the server's record says which class; the URL only where in the lesson
        return
    wanted = sent_to()
    if wanted is not None:
        join_form(learner.room().class_of(wanted))
        st.stop()  # no page until they have a name in the class


def join_form(joining: Class) -> None:
    """Ask the student for a name, unique in the class; once joined, open the class's lesson where
    the teacher has moved it."""
    st.title(f"Join “{joining.name}”")
    st.markdown("Your teacher has started this class on VAE Studio: choose the name your teacher and classmates "
                "will see beside your runs and answers. This browser keeps you in the class, even after a reload.")
    with st.form("class_join"):
        name = st.text_input("Your name", max_chars=NAME_CHARS, key="class_join_name",
                             help="What your teacher and the class see beside your runs and answers.")
        joined = st.form_submit_button("Join the class", type="primary", icon=":material/login:")
    if not joined:
        return
    try:
        learner.room().join(runs.owner(), joining.id, name)
    except ClassError as e:
        st.error(str(e), icon=":material/error:")
        return
    learner.refresh()
    step = joining.moved_to or 0
    st.query_params.from_dict({"lesson": joining.lesson, "step": str(step + 1)})
    st.rerun()


def teaches() -> bool:
    """Whether this browser opened a class's teacher's link."""
    return st.session_state.get(TEACHER_KEY) is not None


def teaching() -> Class | None:
    """The class this browser teaches, or None."""
    class_id = st.session_state.get(TEACHER_KEY)
    return None if class_id is None else learner.room().class_of(class_id)


def badge() -> None:
    """The sidebar's line saying class mode is on, who this browser is in it (for a student, redrawn
    every few seconds with a check for the teacher's move: ``student_badge``), and any notice about
    the class the URL named."""
    if NOTICE_KEY in st.session_state:
        st.warning(st.session_state.pop(NOTICE_KEY), icon=":material/info:")
    with contextlib.suppress(QueueError, ClassError):
        taught = teaching()
        if taught is not None:
            st.caption(f":material/co_present: Class: **{taught.name}** · you are its teacher")
            return
        mine = learner.my_class()
        if mine is not None:
            st.fragment(run_every=MOVE_CHECK_S)(student_badge)(mine)


def student_badge(mine: Class) -> None:
    """A student's badge line, drawn again every ``MOVE_CHECK_S`` seconds however idle the page is:
    when the teacher has moved the class since the student's panel last followed a move, the whole
    page runs again, and its start (``views.class_move``) takes the panel to the step, with a notice."""
    st.caption(f":material/school: Class: **{mine.name}** · you are **{learner.me().name}**")
    if move_pending(mine.id):
        st.rerun(scope="app")


def move_pending(class_id: int) -> bool:
    """Whether the teacher has moved the class since this learner's panel last followed a move: one
    store read (the class), against the learner as this browser last read or saved them."""
    try:
        now = learner.room().class_of(class_id)
    except (ClassError, QueueError):
        return False  # gone or unreadable now: the page's next run says so, and a later check tries again
    return now.moves(learner.me().progress)


def run_seed(owner: str, runs_queued: int) -> int:
    """The seed of a learner's next run in a class: its own (so that a class's runs differ on the
    Board), and known before it is queued (so that the form can show it)."""
    return int.from_bytes(hashlib.sha256(f"{owner}:{runs_queued}".encode()).digest()[:4], "big")


def public_address() -> tuple[str, str]:
    """The address students reach this server at, and a line saying where it comes from:
    ``VAE_STUDIO_PUBLIC_URL`` if set, else this machine's network address and the server's port (a
    teacher's own ``localhost`` would send students to their own laptops)."""
    if settings().public_url:
        return settings().public_url, "The address is VAE_STUDIO_PUBLIC_URL's."
    port, host = st.get_option("server.port"), network_host()
    if not host:
        return f"http://localhost:{port}", ("This machine has no network address, so only its own browsers reach "
                                            "this link; set VAE_STUDIO_PUBLIC_URL to the address students use.")
    return f"http://{host}:{port}", ("The address is this machine's on its network; if students reach the server "
                                     "by another name (a proxy, a DNS name), set VAE_STUDIO_PUBLIC_URL to it.")


def start(name: str, lesson: str, run_size: str, runs_each: int, own_data: bool) -> Class:
    """Start a class, taught from this browser from now on; ClassError for a bad name or limit."""
    started = learner.room().start_class(name, lesson, run_size, runs_each, own_data)
    st.session_state[TEACHER_KEY] = started.id
    return started


def show_links(taught: Class) -> None:
    """The class's link for students and its teacher's link, on an address students can reach."""
    base, note = public_address()
    st.markdown(f"**The class link**, for students: each joins “{taught.name}” under a name.")
    st.code(f"{base}/?class={taught.id}", language=None)
    st.markdown("**The teacher's link**, for you alone: it opens the teacher's view on any browser.")
    st.code(f"{base}/?class={taught.id}&teacher={taught.secret}", language=None)
    st.caption(note)
