"""A Streamlit session without a browser: the dashboard's own WebSocket protocol, from the protobuf classes the
installed streamlit package ships (streamlit.proto).

What a browser tab does, reduced to what a load test and a rendering check need:

1. GET the page (as the browser loads the HTML), keeping the cookies the server or the proxy sets: behind
   `llmcap serve --workers N` that is HAProxy's affinity cookie, so the WebSocket reaches the process that
   served the page.
2. Open `/_stcore/stream` with the subprotocol `streamlit` and those cookies.
3. Send a BackMsg `rerun_script` (a ClientState: the page's query string, its name in the URL path, later its
   page_script_hash from the run's `navigation` message, and the widget states), then read ForwardMsg until
   `script_finished`. The deltas of a run are applied to a tree keyed by delta path, as the frontend does: new
   elements and blocks replace what was at their path, and at the end of a full run everything the run did not
   write is dropped (stale elements).
4. A widget change is another `rerun_script` carrying the widget's new value (WidgetState with the value field
   the widget's type uses: double_value for number inputs, string_value (the option's label) for selectboxes
   and radios, string_array_value for multiselects, bool_value for checkboxes). Like the frontend, the client
   sends the value of every widget on the page each time, not only the changed one (the server resets a
   widget whose state stops arriving): a widget's value is what the server last set on its element
   (set_value), else its default when first drawn, else what this client changed it to. Widget ids come from
   the elements of the latest run: `$$ID-<hash>-<key>` for a keyed widget.
   A widget drawn inside an `st.fragment` carries the fragment's id on its delta; a change to it asks for a
   rerun of that fragment only (ClientState.fragment_id), as the frontend does, and the run ends with
   FINISHED_FRAGMENT_RUN_SUCCESSFULLY.

A run's `problems` are the exception elements (a traceback on the page) and error alerts (st.error) it drew.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = {
    ForwardMsg.FINISHED_SUCCESSFULLY: "finished",
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR: "compile error",
    ForwardMsg.FINISHED_EARLY_FOR_RERUN: "stopped for a rerun",
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: "fragment finished",
}
OK = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
# Widget element type -> the WidgetState field its value travels in.
VALUE_FIELD = {
    "number_input": "double_value",
    "selectbox": "string_value",
    "radio": "string_value",
    "checkbox": "bool_value",
    "toggle": "bool_value",
    "text_input": "string_value",
    "multiselect": "string_array_value",
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProtocolError(Exception):
    """The server closed the stream, or sent no script_finished within the timeout."""


@dataclass
class Run:
    """One script run as the client saw it."""

    elapsed_ms: float  # from sending the rerun request to script_finished
    status: int  # ForwardMsg.ScriptFinishedStatus
    fragment: bool
    problems: list[str] = field(default_factory=list)  # exception elements and error alerts drawn by this run
    messages: int = 0
    deltas: int = 0  # elements and blocks this run drew

    @property
    def ok(self) -> bool:
        return self.status in OK and not self.problems


@dataclass
class _Widget:
    id: str
    kind: str  # element type, e.g. "number_input"
    fragment_id: str


def _problem(element) -> str | None:
    kind = element.WhichOneof("type")
    if kind == "exception":
        return f"exception: {element.exception.type}: {element.exception.message}"
    if kind == "alert" and element.alert.format == Alert.ERROR:
        return f"error: {element.alert.body}"
    return None


def _drawn_value(element, kind: str) -> tuple[WidgetState, bool] | None:
    """The value a widget element puts in the frontend's widget state, and whether the server set it (set_value:
    overrides what the client holds) rather than it being the default (used only when the client holds none)."""
    if kind not in VALUE_FIELD:
        return None
    w = getattr(element, kind)
    state = WidgetState(id=w.id)
    if kind in ("selectbox", "radio"):
        if w.set_value:
            state.string_value = w.raw_value
        elif w.HasField("default") and 0 <= w.default < len(w.options):
            state.string_value = w.options[w.default]
        else:
            return None
    elif kind == "number_input":
        if w.set_value and w.HasField("value"):
            state.double_value = w.value
        elif w.HasField("default"):
            state.double_value = w.default
        else:
            return None
    elif kind == "multiselect":
        labels = list(w.raw_values) if w.set_value else [w.options[i] for i in w.default if 0 <= i < len(w.options)]
        state.string_array_value.data.extend(labels)
    elif kind == "text_input":
        state.string_value = w.value if w.set_value else w.default
    else:  # checkbox, toggle
        state.bool_value = w.value if w.set_value else w.default
    return state, bool(w.set_value)


class Session:
    """One browser-less session of the dashboard at `base_url` (e.g. http://127.0.0.1:8501)."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cookies: dict[str, str] = {}
        self.backend: str | None = None  # the proxy's X-Llmcap-Backend header on the page load, where present
        self.elements: dict[tuple[int, ...], object] = {}  # delta path -> Element proto (widgets, metrics, ...)
        self.widgets: dict[str, _Widget] = {}  # widget key (or id when unkeyed) -> widget
        self.query_string = ""
        self.page_name = ""
        self.page_script_hash = ""
        self._values: dict[str, WidgetState] = {}  # widget id -> its value, as the frontend holds it
        self._ws = None

    # -- connection -----------------------------------------------------------------------------------------

    def _load_page(self, path: str) -> None:
        """GET the page as the browser does first (blocking): keeps the cookies it sets (the proxy's affinity)."""
        req = urllib.request.Request(f"{self.base_url}/{path.lstrip('/')}")
        with _NO_PROXY.open(req, timeout=self.timeout_s) as resp:
            resp.read()
            self.backend = resp.headers.get("X-Llmcap-Backend")
            for header in resp.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value

    async def open(self, link: str) -> Run:
        """Open a shared link (a path with a query string, e.g. "/plan?model=..."): the first run of its page."""
        parsed = urllib.parse.urlsplit(link)
        await asyncio.to_thread(self._load_page, parsed.path + (f"?{parsed.query}" if parsed.query else ""))
        ws_url = "ws" + self.base_url[len("http") :] + "/_stcore/stream"
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else None
        self._ws = await websockets.connect(
            ws_url, subprotocols=["streamlit"], additional_headers=headers, max_size=None, open_timeout=self.timeout_s,
            ping_interval=None,  # as a browser: no protocol pings (a busy server's late pong is not a lost page)
        )  # fmt: skip
        self.page_name = parsed.path.strip("/")
        self.query_string = parsed.query
        return await self._rerun(fragment_id="")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- reruns ---------------------------------------------------------------------------------------------

    def widget(self, key: str) -> _Widget:
        try:
            return self.widgets[key]
        except KeyError:
            have = ", ".join(sorted(self.widgets))
            raise KeyError(f"no widget with key {key!r} on the page (have: {have})") from None

    async def change(self, key: str, value) -> Run:
        """Set the widget `key` to `value` and wait for the rerun it triggers (the fragment's, inside one)."""
        w = self.widget(key)
        if w.kind not in VALUE_FIELD:
            raise ValueError(f"widget {key!r} is a {w.kind}; this client sets {', '.join(VALUE_FIELD)}")
        state = WidgetState(id=w.id)
        if w.kind == "multiselect":
            state.string_array_value.data.extend(value)
        else:
            setattr(state, VALUE_FIELD[w.kind], value)
        self._values[w.id] = state
        return await self._rerun(fragment_id=w.fragment_id)

    async def _rerun(self, fragment_id: str) -> Run:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_name = self.page_name
        cs.page_script_hash = self.page_script_hash
        cs.fragment_id = fragment_id
        on_page = {w.id for w in self.widgets.values()}
        cs.widget_states.widgets.extend(v for k, v in self._values.items() if k in on_page)
        seen: set[tuple[int, ...]] = set()  # paths this run drew at
        problems: list[str] = []
        t0 = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        count = 0
        deadline = t0 + self.timeout_s
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ProtocolError(f"no script_finished within {self.timeout_s:g} s")
            try:
                raw = await asyncio.wait_for(self._ws.recv(), timeout=remaining)
            except TimeoutError:
                raise ProtocolError(f"no script_finished within {self.timeout_s:g} s") from None
            except websockets.ConnectionClosed as exc:
                raise ProtocolError(f"the server closed the stream: {exc}") from None
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            count += 1
            kind = fm.WhichOneof("type")
            if kind == "navigation":  # the page st.navigation ran (new_session's hash is the entry script's)
                self.page_script_hash = fm.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = fm.page_info_changed.query_string
            elif kind == "delta":
                self._apply(fm, seen, problems)
            elif kind == "script_finished":
                elapsed_ms = (time.perf_counter() - t0) * 1e3
                status = fm.script_finished
                if status == ForwardMsg.FINISHED_SUCCESSFULLY:
                    self._drop_stale(seen)
                return Run(elapsed_ms, status, bool(fragment_id), problems, count, len(seen))

    def _apply(self, fm: ForwardMsg, seen: set, problems: list[str]) -> None:
        path = tuple(fm.metadata.delta_path)
        delta = fm.delta
        dkind = delta.WhichOneof("type")
        if dkind not in ("new_element", "add_block"):
            return
        # A new element or block replaces what was at its path, and everything below it.
        for p in [p for p in self.elements if p[: len(path)] == path]:
            del self.elements[p]
        seen.add(path)
        if dkind == "add_block":
            return
        element = delta.new_element
        self.elements[path] = element
        problem = _problem(element)
        if problem:
            problems.append(problem)
        ekind = element.WhichOneof("type")
        wid = getattr(getattr(element, ekind), "id", "") if ekind else ""
        if isinstance(wid, str) and wid:
            key = wid.split("-", 2)[2] if wid.startswith("$$ID-") and wid.count("-") >= 2 else wid
            self.widgets[key] = _Widget(wid, ekind, delta.fragment_id)
            state = _drawn_value(element, ekind)
            if state is not None and (state[1] or wid not in self._values):
                self._values[wid] = state[0]

    def _drop_stale(self, seen: set) -> None:
        """After a full run: drop elements at paths this run did not write (the frontend clears them)."""
        keep = {p for p in self.elements if any(p[: len(s)] == s for s in seen)}
        self.elements = {p: e for p, e in self.elements.items() if p in keep}
        ids = {getattr(getattr(e, e.WhichOneof("type")), "id", None) for e in self.elements.values()}
        self.widgets = {k: w for k, w in self.widgets.items() if w.id in ids}

    # -- what the page shows --------------------------------------------------------------------------------

    def metrics(self) -> dict[str, str]:
        """The KPI tiles on the page: label -> value text (as the page renders it)."""
        return {
            e.metric.label: e.metric.body for _, e in sorted(self.elements.items()) if e.WhichOneof("type") == "metric"
        }

    def problems(self) -> list[str]:
        """Exception elements and error alerts now on the page."""
        return [p for e in self.elements.values() if (p := _problem(e))]
