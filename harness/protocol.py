"""A Streamlit session without a browser: a websocket client that speaks the app's protocol as the
browser does, for the load benchmarks, where a class's browsers would otherwise share the server's
cores (in a classroom they run on the students' laptops).

It opens pages, sets widget values (the canvas's and the chart's too, which only a browser makes),
submits forms, reruns each live fragment at the interval the server asks for, and keeps every
element it is sent (resolving the references the server sends for elements it already holds), so
that a caller can read what a page shows: headings, image captions and their files, chart specs,
progress bars.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field

import pyarrow
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.TextInput_pb2 import TextInput
from streamlit.proto.WidgetStates_pb2 import WidgetState

PAGE_DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


@dataclass
class PageRun:
    """One whole-page script run, as this client received it."""

    elements: list[Element] = field(default_factory=list)  # in the order they came
    seconds: float = 0.0  # from sending the request to the script's "finished" message
    done: asyncio.Future | None = None

    def of(self, kind: str) -> list:
        """The elements of one kind ("heading", "imgs", "plotly_chart", ...), as their inner protos."""
        return [getattr(e, kind) for e in self.elements if e.WhichOneof("type") == kind]

    @property
    def title(self) -> str:
        return next((h.body for h in self.of("heading")), "")

    def image(self, caption: str):
        """The first image whose caption contains ``caption``, else None."""
        return next((i for imgs in self.of("imgs") for i in imgs.imgs if caption in i.caption), None)

    def widget(self, key: str):
        """The widget of key ``key`` (its element id ends with ``-key``), as its inner proto; None if not shown."""
        inner = (getattr(e, e.WhichOneof("type")) for e in self.elements)
        return next((p for p in inner if hasattr(p, "id") and p.id.endswith(f"-{key}")), None)

    def submit_button(self, form: str, label: str):
        """The submit button ``label`` of the form of key ``form``; None if not shown."""
        return next((b for b in self.of("button") if b.is_form_submitter and b.form_id == form and b.label == label),
                    None)

    def table(self, key: str) -> dict[str, list] | None:
        """The dataframe of key ``key``, column by column (decoded from the Arrow stream the server
        sends); None if not shown."""
        frame = self.widget(key)
        if frame is None:
            return None
        return pyarrow.ipc.open_stream(frame.arrow_data.data).read_all().to_pydict()

    @property
    def errors(self) -> list[str]:
        """What the page shows as an exception or an error box."""
        return ([e.message for e in self.of("exception")]
                + [a.body for a in self.of("alert") if a.format == a.ERROR])


def input_state(widget: TextInput | NumberInput, value: str | float) -> WidgetState:
    """What the browser sends for a text or number input holding ``value``: a number input's
    value goes as an int or a float, as its data type says."""
    if isinstance(widget, TextInput):
        return WidgetState(id=widget.id, string_value=value)
    if isinstance(widget, NumberInput):
        if widget.data_type == NumberInput.INT:
            return WidgetState(id=widget.id, int_value=value)
        return WidgetState(id=widget.id, double_value=value)
    raise TypeError(f"not a text or number input: {type(widget).__name__}")


@dataclass
class AppSession:
    """One browser's session on the app, without the browser; use as ``async with``."""

    url: str  # the app's base URL, http://host:port
    fragment_reruns: int = 0  # counters since connecting (or ``reset``)
    bytes: int = 0  # received
    elements: int = 0  # new elements received, those sent as references included
    references: int = 0  # elements sent as a reference to one this session holds
    pages: dict[str, str] = field(default_factory=dict)  # url path -> page script hash
    cookies: dict[str, str] = field(default_factory=dict)  # those given and those set on the first GET, sent back
    _ws: websockets.ClientConnection | None = None
    _page_hash: str = ""
    _widgets: dict[str, WidgetState] = field(default_factory=dict)  # what this "browser" holds
    _held: dict[str, ForwardMsg] = field(default_factory=dict)  # cacheable deltas, by hash
    _timers: dict[str, asyncio.Task] = field(default_factory=dict)  # fragment id -> its rerun loop
    _run: PageRun | None = None  # the page run awaited, if any
    _collecting: bool = False  # the server is running that page run (not a fragment's)
    _receiver: asyncio.Task | None = None

    @property
    def _awaiting(self) -> bool:
        return self._run is not None and not self._run.done.done()

    async def __aenter__(self) -> AppSession:
        """Load the page first, as the browser does, keeping the cookies it sets (a balancer's, that
        pins this browser to one replica), then open the websocket with them."""
        self.cookies |= await asyncio.to_thread(self._cookies_set)
        ws_url = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                            additional_headers=self._cookie_header())
        self._receiver = asyncio.create_task(self._receive())
        return self

    async def __aexit__(self, *exc) -> None:
        for task in (*self._timers.values(), self._receiver):
            task.cancel()
        await self._ws.close()

    async def wait_closed(self) -> None:
        """Until the server's end of the websocket is gone (a replica killed, say)."""
        await self._ws.wait_closed()

    def reset(self) -> None:
        self.fragment_reruns = self.bytes = self.elements = self.references = 0

    async def open(self, page: str = "", timeout: float = 60.0) -> PageRun:
        """Open a page by its URL path ("" for the first page), as a click in the sidebar does."""
        return await self._rerun(page, timeout)

    async def set_widget(self, element_id: str, timeout: float = 60.0, **value) -> PageRun:
        """Give one widget a value (``json_value=...``, ``string_value=...``, ...) and rerun the page."""
        self._widgets[element_id] = WidgetState(id=element_id, **value)
        return await self._rerun(None, timeout)

    async def submit(self, run: PageRun, form: str, label: str, values: dict[str, str | float],
                     timeout: float = 60.0) -> PageRun:
        """Fill the text and number inputs of form ``form`` that ``run`` shows (``values`` by key) and
        press its submit button ``label``: one rerun carrying the values and the button's trigger, as
        the browser sends a submit. The trigger goes with that rerun only, as in the browser: held,
        it would submit the form again at every later rerun."""
        button = run.submit_button(form, label)
        if button is None:
            raise AssertionError(f"the page shows no {label!r} button in the form {form!r}")
        for key, value in values.items():
            widget = run.widget(key)
            if widget is None or widget.form_id != form:
                raise AssertionError(f"the form {form!r} shows no widget {key!r}")
            self._widgets[widget.id] = input_state(widget, value)
        return await self._rerun(None, timeout, WidgetState(id=button.id, trigger_value=True))

    async def media(self, url: str) -> bytes:
        """The file behind a media URL the app sent (an image's ``url``)."""
        def fetch() -> bytes:
            request = urllib.request.Request(self.url + url, headers=self._cookie_header())
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()
        return await asyncio.to_thread(fetch)

    def _cookies_set(self) -> dict[str, str]:
        """The name=value pairs of the Set-Cookie headers of a GET of the app's page."""
        request = urllib.request.Request(self.url + "/", headers=self._cookie_header())
        with urllib.request.urlopen(request, timeout=30) as response:
            pairs = (header.split(";", 1)[0] for header in response.headers.get_all("Set-Cookie") or [])
            return dict(pair.strip().split("=", 1) for pair in pairs if "=" in pair)

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    async def _rerun(self, page: str | None, timeout: float, *once: WidgetState) -> PageRun:
        """Send a whole-page rerun (of ``page``, else of the current one), with the widget states
        ``once`` besides those held (a button's trigger), and wait for it to finish."""
        for timer in self._timers.values():  # the new run tells again which fragments refresh
            timer.cancel()
        self._timers.clear()
        run = self._run = PageRun(done=asyncio.get_running_loop().create_future())
        if page is not None:
            self._page_hash = self.pages.get(page, "")
        request = self._request(page_name=page or "")
        request.rerun_script.widget_states.widgets.extend(once)
        start = time.perf_counter()
        await self._ws.send(request.SerializeToString())
        try:
            await asyncio.wait_for(asyncio.shield(run.done), timeout)
        finally:
            run.seconds = time.perf_counter() - start
        self._forget_unshown_widgets(run)
        return run

    def _request(self, page_name: str = "", fragment_id: str = "") -> BackMsg:
        """A rerun of the current page (or of ``page_name``, or of one fragment), carrying what the
        browser would: every widget value it holds and the hashes of the elements it keeps."""
        request = BackMsg()
        rerun = request.rerun_script
        rerun.query_string, rerun.page_script_hash, rerun.page_name = "", self._page_hash, page_name
        rerun.fragment_id, rerun.is_auto_rerun = fragment_id, bool(fragment_id)
        rerun.widget_states.widgets.extend(self._widgets.values())
        rerun.cached_message_hashes.extend(self._held)
        return request

    def _forget_unshown_widgets(self, run: PageRun) -> None:
        """Drop the values of widgets the page no longer shows, as the browser does after a run."""
        inner = (getattr(e, e.WhichOneof("type")) for e in run.elements)
        shown = {proto.id for proto in inner if hasattr(proto, "id")}
        self._widgets = {k: v for k, v in self._widgets.items() if k in shown}

    async def _refresh(self, fragment_id: str, interval: float) -> None:
        """Rerun one live fragment every ``interval`` s, skipping a tick while a page run is awaited."""
        while True:
            await asyncio.sleep(interval)
            if self._awaiting:
                continue
            self.fragment_reruns += 1
            await self._ws.send(self._request(fragment_id=fragment_id).SerializeToString())

    async def _receive(self) -> None:
        async for data in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self.bytes += len(data)
            if msg.WhichOneof("type") == "ref_hash":  # an element this session holds, sent by its hash
                held = self._held.get(msg.ref_hash)
                if held is None:
                    continue
                self.references += 1
                held.metadata.CopyFrom(msg.metadata)
                msg = held
            self._take(msg)

    def _take(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":  # a script run starts: a page run if it reruns no fragment
            self._collecting = self._awaiting and not msg.metadata.run.fragment_ids
            if self._collecting:  # what a run the script cut short by st.rerun sent is redrawn by this one
                self._run.elements.clear()
        elif kind == "navigation":
            self.pages.update({p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages})
            self._page_hash = msg.navigation.page_script_hash or self._page_hash
        elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in self._timers:
            self._timers[msg.auto_rerun.fragment_id] = asyncio.create_task(
                self._refresh(msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "delta":
            if msg.metadata.cacheable:
                self._held[msg.hash] = msg
            if msg.delta.WhichOneof("type") == "new_element":
                self.elements += 1
                if self._collecting:
                    self._run.elements.append(msg.delta.new_element)
        elif kind == "script_finished" and msg.script_finished in PAGE_DONE and self._collecting:
            self._collecting = False
            self._run.done.set_result(msg.script_finished)
