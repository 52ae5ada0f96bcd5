"""``tqdm``, ``trange`` and ``track``: tqdm's own class, reporting to the server instead of drawing.

``tqdm`` subclasses ``tqdm.std.tqdm`` the way ``tqdm.notebook`` and ``tqdm.rich`` do, so
its whole API (positional arguments, ``set_postfix``, ``pandas()``, ``tqdm_class=``) comes
by inheritance; only the output is ours. In a kernel a top-level bar displays the job's
output; elsewhere tqdm draws its usual text line. A bar opened while another bar of the
same thread is open becomes that bar's child job (``parent_id``) and gets no output.

Reporting never blocks the loop: one daemon thread per server (``_Sender``) serves every
bar of the process. A bar only marks itself changed; the sender reads its absolute
counters at most ten times a second, and takes the final state from ``close()``, which
never waits. Final reports still pending are flushed at interpreter exit (at most
``EXIT_FLUSH_SECONDS`` in all), and a server that did not answer is left alone for
``SERVER_DOWN_SECONDS`` so later bars cost nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import dis
import math
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar

from tqdm.asyncio import tqdm_asyncio
from tqdm.std import tqdm as std_tqdm

from .contract import (
    DEFAULT_UNIT,
    MAX_COUNTER,
    MAX_FINISHED_CHILDREN,
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_POSTFIX_LENGTH,
    MAX_SAMPLE_ERROR_LENGTH,
    MAX_SAMPLE_ITEM_LENGTH,
    MAX_UNIT_LENGTH,
    REPORTABLE_STATUSES,
    JobStatus,
    add_error_sample,
    describe_job,
    describe_progress,
    is_final,
    job_document,
)

if TYPE_CHECKING:
    from .client import ProgressClient, ServerInfo

T = TypeVar("T")

REPORT_INTERVAL = 0.1  # at most ten reports a second per bar
HEARTBEAT_INTERVAL = 30.0  # keeps the server's reporter watchdog quiet during slow items
CHILD_CREATE_DELAY = 0.1  # a nested bar that ends sooner may never be sent (see _Sender)
RECHECK_AFTER = 0.5  # a running loop unrefreshed this long looks at the clock at its next item
MAX_STEP = 1024  # the most items between two looks at the clock before a refresh is due
PASS_INTERVAL = 0.05  # the sender's pause between two passes over the bars
SERVER_DOWN_SECONDS = 60.0  # a server that did not answer is not asked again for this long
EXIT_FLUSH_SECONDS = 2.0  # the most interpreter exit waits for pending final reports
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
PARENT_ENV = "JUPYTER_PROGRESS_PARENT"
# Instructions at which a frame drops a generator without an exception in flight.
_NORMAL_STOP_PREFIXES = (
    "POP_",
    "FOR_ITER",
    "END_FOR",
    "RETURN_",
    "STORE_",
    "DELETE_",
    "JUMP",
    "NOP",
    "SWAP",
    "COPY",
)


class JobCancelled(Exception):
    """The job was cancelled from elsewhere (the widget, the panel, the CLI)."""


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def _clean(text: str, limit: int) -> str:
    """Text the server accepts: no NUL, no lone surrogates, within the limit."""
    text = text[:limit].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _count(value: Any) -> int:
    """tqdm allows float counts; the server keeps whole, bounded ones."""
    try:
        return max(0, min(int(value), MAX_COUNTER))
    except (TypeError, ValueError, OverflowError):
        return 0


# ----- the link between a bar and the sender ---------------------------------------------


class _Link:
    """What the sender knows of one bar. The bar writes ``dirty``/``final``; the sender the rest.

    The bar is held weakly: a bar that is dropped without ``close()`` is closed by
    tqdm's ``__del__``, which hands its final state over.
    """

    def __init__(self, bar: tqdm[Any], create: dict[str, Any], parent: _Link | None) -> None:
        self.job_id: str = create["job_id"]
        self.bar = weakref.ref(bar)
        self.create: dict[str, Any] | None = create  # None once the server has the job
        self.parent = parent
        self.opened_at = time.monotonic()
        self.final_at = 0.0
        self.leave = bool(create.get("leave", True))
        self.display: Any = None
        self.dirty = True
        self.final: dict[str, Any] | None = None
        self.sent_at = 0.0
        self.sent: dict[str, Any] = {"name": create["name"]}  # what the server was last told
        self.samples_sent = 0
        self.cancelled = False
        self.reachable = True
        self.last_job: dict[str, Any] | None = None

    @property
    def is_cancelled(self) -> bool:
        link: _Link | None = self
        while link is not None:
            if link.cancelled:
                return True
            link = link.parent
        return False


class _Sender:
    """One daemon thread per server: creates the jobs of every bar, in the order they
    opened (a parent before its children), and sends each bar's newest state, at most
    ``1 / REPORT_INTERVAL`` times a second per bar. With ``server=None`` it only keeps
    the kernel's outputs up to date.
    """

    def __init__(self, server: ServerInfo | None, *, discover: bool) -> None:
        self.server = server
        self.discover = discover  # find the server in this thread: it reads files
        self.down_until = 0.0
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._sleep_until = float("inf")  # when the thread looks next (inf: it is looking)
        self._hurry = threading.Event()  # set while flush() waits: no pause between passes
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._thread: threading.Thread | None = None
        self._client: ProgressClient | None = None

    # --- called from the bars' threads (never blocks on I/O) ---

    def add(self, link: _Link) -> None:
        if time.monotonic() < self.down_until:
            link.reachable = False
        with self._lock:
            self._links[link.job_id] = link
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jupyter-progress-sender", daemon=True
                )
                self._thread.start()
        self.poke(CHILD_CREATE_DELAY if link.parent is not None else 0.0)

    def poke(self, within: float = 0.0) -> None:
        """Something is due in ``within`` seconds: wake the thread unless it will look by then
        (fewer wakes: the thread takes the GIL from the loops less often)."""
        if self._sleep_until > time.monotonic() + within:
            self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued state is sent (or ``timeout``); True if all went."""
        deadline = time.monotonic() + timeout
        self._hurry.set()
        self._wake.set()
        try:
            with self._idle:
                while self._busy or any(self._due_now(link) for link in self._links.values()):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._idle.wait(min(left, 0.05))
            return True
        finally:
            self._hurry.clear()

    # --- the sender thread ---

    def _due_now(self, link: _Link) -> bool:
        """Whether ``flush`` must wait for this link."""
        return link.final is not None or (
            link.reachable and (link.create is not None or link.dirty)
        )

    def _pick(self, now: float) -> tuple[list[_Link], float]:
        """The links to serve now, and when to look again."""
        self._drop_unseen_children()
        due: list[_Link] = []
        wake_at = now + HEARTBEAT_INTERVAL
        for link in list(self._links.values()):
            bar = link.bar() if link.final is None else None
            recheck = bar._recheck if bar is not None else None
            if recheck is not None:  # a loop is running: look that it is not left unseen
                wake_at = min(wake_at, now + RECHECK_AFTER)
                if time.time() - bar.last_print_t > RECHECK_AFTER:  # type: ignore[union-attr]
                    recheck()
            if link.create is not None and link.parent is not None:
                # A child is created once it has lived (or been over) a moment: the rows of
                # a fast inner loop end before that, and only the newest few are ever sent.
                at = (link.opened_at if link.final is None else link.final_at) + CHILD_CREATE_DELAY
                if at > now:
                    wake_at = min(wake_at, at)
                    continue
            if link.final is not None or (link.create is not None and link.reachable):
                due.append(link)
                continue
            if not link.reachable and (link.display is None or not link.dirty):
                continue  # nothing to send, nothing to show
            at = link.sent_at + (REPORT_INTERVAL if link.dirty else HEARTBEAT_INTERVAL)
            if at <= now:
                due.append(link)
            else:
                wake_at = min(wake_at, at)
        return due, wake_at

    def _drop_unseen_children(self) -> None:
        """Children that lived and ended before the server heard of them (fast inner loops
        while the queue is long): the server keeps only the newest ``MAX_FINISHED_CHILDREN``
        of a parent, so older ones are never sent."""
        seen: dict[str, int] = {}
        for link in reversed(list(self._links.values())):
            parent_id = link.create.get("parent_id") if link.create is not None else None
            if parent_id is None or link.final is None or link.display is not None:
                continue
            seen[parent_id] = seen.get(parent_id, 0) + 1
            if seen[parent_id] > MAX_FINISHED_CHILDREN:
                del self._links[link.job_id]

    def _run(self) -> None:
        while True:
            self._wake.clear()
            with self._lock:
                self._sleep_until = float("inf")
                due, wake_at = self._pick(time.monotonic())
                self._sleep_until = time.monotonic() + PASS_INTERVAL if due else wake_at
                self._busy = bool(due)
                if not due:
                    self._idle.notify_all()
            if not due:
                self._wake.wait(max(0.0, wake_at - time.monotonic()))
                continue
            for link in due:
                try:
                    done = self._serve(link)
                except Exception:  # never let one bar stop the others' reports
                    link.reachable, done = False, link.final is not None
                if done:
                    with self._lock:
                        self._links.pop(link.job_id, None)
            with self._lock:
                self._busy = False
                self._idle.notify_all()
            # Passes at most every PASS_INTERVAL: a burst of bars is served in one batch,
            # and the thread takes the GIL from the loops less often.
            self._hurry.wait(PASS_INTERVAL)

    def _http(self) -> ProgressClient | None:
        if self._client is not None:
            return self._client
        if time.monotonic() < self.down_until:
            return None
        from .client import ProgressClient, find_server

        server = self.server
        if server is None and self.discover:
            try:
                server = find_server()
            except Exception:
                server = None
        if server is None:
            self.down_until = time.monotonic() + SERVER_DOWN_SECONDS
            return None
        import httpx

        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        self._client = ProgressClient(server, timeout=timeout)
        return self._client

    def _server_down(self) -> None:
        """Nothing answered: give up on every queued bar, and on new ones for a while."""
        self.down_until = time.monotonic() + SERVER_DOWN_SECONDS
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.reachable = False
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    def _serve(self, link: _Link) -> bool:
        """Send what is due for one bar; True once its final state was dealt with."""
        final = link.final
        bar = link.bar()
        link.dirty = False  # before reading the bar: a change from now on marks it again
        state = final if final is not None else (bar._state() if bar is not None else None)
        if link.reachable and not (final is not None and self._skip(link, final)):
            client = self._http() if (link.create is not None or state is not None) else None
            if client is None:
                link.reachable = False
            else:
                self._send(client, link, state)
        link.sent_at = time.monotonic()
        if link.display is not None and state is not None and final is None:
            try:
                job = link.last_job if link.reachable and link.last_job else state["_job"]
                link.display.update(job)
            except Exception:
                link.display = None
        return final is not None

    def _skip(self, link: _Link, final: dict[str, Any]) -> bool:
        """A ``leave=False`` bar that completed before the server heard of it: the server
        would delete it at once, so it is never sent (fast inner loops cost nothing)."""
        return link.create is not None and not link.leave and final.get("status") == "completed"

    def _send(self, client: ProgressClient, link: _Link, state: dict[str, Any] | None) -> None:
        from .client import ProgressAPIError

        try:
            if link.create is not None:
                try:
                    link.last_job = client.create_job(**link.create)
                except ProgressAPIError as error:
                    # A parent from the environment may be gone: report as a top-level job.
                    if error.status not in (400, 404) or "parent_id" not in link.create:
                        raise
                    link.create.pop("parent_id")
                    link.last_job = client.create_job(**link.create)
                link.create = None
            if state is None:
                state = {key: value for key, value in link.sent.items() if key != "status"}
            self._report(client, link, state)
        except ProgressAPIError as error:
            if error.status == 409 and link.create is None:
                self._learn_final_status(client, link)
            else:
                link.reachable = False
        except Exception:
            self._server_down()

    def _report(self, client: ProgressClient, link: _Link, state: dict[str, Any]) -> None:
        from .client import ProgressAPIError

        body = {key: value for key, value in state.items() if not key.startswith("_")}
        for key in ("name", "postfix", "message"):  # text is sent when it changed
            if key in body and link.sent.get(key, "") == body[key]:
                del body[key]
        samples = body.pop("error_samples", [])
        if len(samples) > link.samples_sent:
            body["error_samples"] = samples[link.samples_sent :]
        try:
            link.last_job = client.report(link.job_id, **body)
        except ProgressAPIError as error:
            if error.status != 400 or "error_samples" not in body:
                raise
            del body["error_samples"]  # never let a refused sample block the counters
            link.last_job = client.report(link.job_id, **body)
        link.samples_sent = len(samples)
        link.sent.update(body)

    def _learn_final_status(self, client: ProgressClient, link: _Link) -> None:
        """A 409: the job ended elsewhere (cancelled, or failed by the watchdog)."""
        try:
            link.last_job = client.get_job(link.job_id)
        except Exception:
            return
        if link.last_job.get("status") == JobStatus.CANCELLED:
            link.cancelled = True
        elif is_final(link.last_job.get("status")):
            link.reachable = False  # nothing more will be accepted


_senders: dict[Any, _Sender] = {}
_senders_lock = threading.Lock()


def _sender_for(server: ServerInfo | None) -> _Sender:
    """The sender of an explicit server, or of the one found as the docs say."""
    key: Any = server or "auto"
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None:
            sender = _Sender(server, discover=server is None)
            _senders[key] = sender
        return sender


def flush(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Send every queued report now; waits at most ``timeout`` seconds in all.

    A loop's end never waits for the server; call this when something must see the
    final state at once (a test, a script about to read the job back).
    """
    deadline = time.monotonic() + timeout
    done = True
    for sender in list(_senders.values()):
        done = sender.flush(max(0.0, deadline - time.monotonic())) and done
    return done


def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):
        flush(EXIT_FLUSH_SECONDS)


def _forget_senders_after_fork() -> None:
    """A forked worker starts with no sender thread: it makes its own when it needs one."""
    global _senders_lock
    _senders.clear()
    _senders_lock = threading.Lock()
    _open_bars.__dict__.clear()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_senders_after_fork)


# ----- nesting ------------------------------------------------------------------------------

_open_bars = threading.local()  # .stack: weak references to this thread's open bars


def _innermost_open_bar() -> tqdm[Any] | None:
    stack: list[weakref.ref[tqdm[Any]]] = getattr(_open_bars, "stack", [])
    while stack:
        bar = stack[-1]()
        if bar is not None and not bar._closed:
            return bar
        stack.pop()
    return None


def _push_open_bar(bar: tqdm[Any]) -> None:
    if not hasattr(_open_bars, "stack"):
        _open_bars.stack = []
    _open_bars.stack.append(weakref.ref(bar))


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


# ----- the bar ------------------------------------------------------------------------------


class tqdm(tqdm_asyncio, Generic[T]):  # type: ignore[misc]
    """``tqdm.auto.tqdm``, reporting to the Jupyter server instead of drawing ipywidgets.

    Takes every tqdm argument (positional ones too), plus keyword-only ``name`` (an alias
    of ``desc``), ``server`` (a ``ServerInfo``; default: found as the docs say) and
    ``display`` (False: no output in a kernel). ``desc`` is the job's name, ``postfix``,
    ``unit``, ``unit_scale`` and ``leave`` its fields. Per-item outcomes: ``with
    bar.item(x):`` counts an exception inside as an error (suppressed) with a sample;
    ``bar.error(x, exc)`` counts one failed item.
    """

    _default_name = "tqdm"
    last_print_t: float
    last_print_n: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = kwargs.pop("name", None)
        server = kwargs.pop("server", None)
        show = kwargs.pop("display", True)
        if name is not None and "desc" not in kwargs and len(args) < 2:
            kwargs["desc"] = name
        if kwargs.get("disable") is None:
            kwargs["disable"] = _disabled_by_environment()
        self.job_id = uuid.uuid4().hex
        self.status = "processing"
        self.message = ""
        self.started_at = time.time()
        self.finished_at: float | None = None
        self._closed = False
        self._errors = 0
        self._success_sent = 0
        self._explicit = False
        self._samples: list[dict[str, str]] = []
        self._link: _Link | None = None
        self._recheck: Callable[[], None] | None = None
        self._display: Any = None
        self._server = server
        self._parent: tqdm[Any] | None = None
        self._kernel = False
        if not kwargs["disable"]:
            self._parent = _innermost_open_bar()
            self._kernel = _in_kernel()
            if self._kernel:
                kwargs["gui"] = True  # tqdm draws nothing: the job's output shows it
        self._show = show and self._parent is None and self._kernel
        # tqdm_asyncio's __init__ would call iter() on the iterable at once (a DataLoader
        # would start its workers twice); our own __aiter__ does that lazily.
        std_tqdm.__init__(self, *args, **kwargs)
        if self.disable:  # tqdm kept only iterable, n, total and leave
            for key, value in _disabled_defaults(args, kwargs).items():
                setattr(self, key, value)
            self._closed = True
            return
        _push_open_bar(self)
        if self.delay <= 0:
            self._open()

    # ----- opening: the job, its output -------------------------------------------------

    def _open(self, *, show: bool = True) -> None:
        """Queue the job's creation and show its output (once, possibly delayed)."""
        if self._link is not None:
            return
        parent = self._parent
        if parent is not None and not parent.disable:
            parent._open()  # a delayed parent must exist before its child
        parent_link = parent._link if parent is not None else None
        body: dict[str, Any] = {
            "kind": "reported",
            "name": self.name,
            "total": self._total(),
            "job_id": self.job_id,
            "unit": self._unit(),
            "unit_scale": bool(self.unit_scale),
            "leave": self._leave(),
        }
        parent_id = self._parent_id()
        if parent_id:
            body["parent_id"] = parent_id
        if self._show and show:
            try:
                from .widget import show_job

                self._display = show_job(self.job_id, self.name)
            except Exception:
                self._display = None
        sender = _sender_for(self._server)
        link = _Link(self, body, parent_link)
        link.display = self._display
        self._link = link
        self._sender = sender
        sender.add(link)

    def _leave(self) -> bool:
        if self.leave is None:  # tqdm: only the outermost bar stays
            return self._parent is None
        return bool(self.leave)

    # ----- what tqdm calls to draw ------------------------------------------------------

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Every refresh: mark the bar changed (the sender reads it), draw text outside a kernel."""
        link = self._link
        if link is None and not self._closed and not self.disable:
            self._open()
            link = self._link
        if link is not None and not link.dirty:  # the sender has a time for dirty links
            link.dirty = True
            self._sender.poke(REPORT_INTERVAL)
        recheck = self._recheck
        if recheck is not None:
            recheck()
        if not self.gui:
            self._draw(msg, pos)
        return True

    def _draw(self, msg: str | None, pos: int | None) -> None:
        std_tqdm.display(self, msg, pos)

    def clear(self, nolock: bool = False) -> None:
        if not self.gui:
            super().clear(nolock=nolock)

    # ----- counting -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The job's name: the description without tqdm's trailing ': '."""
        desc = str(self.desc or "")
        desc = desc[:-2] if desc.endswith(": ") else desc
        return _clean(desc, MAX_NAME_LENGTH) or self._default_name

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def success(self) -> int:
        """Items that did not fail; never lower than what was already reported."""
        self._success_sent = max(self._success_sent, _count(self.n) - self._errors)
        return self._success_sent

    def error(self, item: Any, error: BaseException | str) -> None:
        """Count one failed item and keep a sample of its error."""
        self._errors += 1
        text = error if isinstance(error, str) else _describe(error)
        add_error_sample(
            self._samples,
            _clean(repr(item), MAX_SAMPLE_ITEM_LENGTH),
            _clean(text, MAX_SAMPLE_ERROR_LENGTH),
        )
        if self._explicit:
            self._advance(1)
        if not self.disable:
            self.refresh()

    def item(self, item: Any = None) -> _ItemScope:
        """``with bar.item(x): work(x)``: success, or an error counted and suppressed.

        Iterating the bar stops counting once this is used: the scopes count instead.
        """
        self._explicit = True
        return _ItemScope(self, item)

    def update(self, n: int | float = 1) -> bool | None:
        """tqdm's ``update``; raises ``JobCancelled`` once the job was cancelled elsewhere."""
        shown = std_tqdm.update(self, n)
        if shown:
            self._check_cancelled()
        return shown

    def _check_cancelled(self) -> None:
        # Not from display(): tqdm holds its lock around it.
        link = self._link
        if link is not None and link.is_cancelled and not self._closed:
            raise JobCancelled(f"the job {self.name!r} was cancelled")

    def _advance(self, n: int | float) -> None:
        """Count ``n`` items whatever ``disable`` says (``item()`` works on any bar)."""
        if self.disable:
            self.n += n  # type: ignore[assignment]
        else:
            tqdm.update(self, n)

    def set_message(self, message: str) -> None:
        self.message = _clean(str(message), MAX_MESSAGE_LENGTH)

    # ----- iteration -------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        """tqdm's loop (count; look at the clock every ``miniters`` items), plus telling
        a ``break`` from an exception, which tqdm's ``finally: close()`` cannot.

        Per item it compares ``n`` with one precomputed ``threshold`` (tqdm subtracts and
        reads ``self.miniters``). Where tqdm looks at the clock after every item until
        ``mininterval`` has passed (all of a short loop), the gap between two looks doubles
        while they come less than 1 ms apart (up to ``MAX_STEP`` items). A loop that slows
        down is not left unseen: the sender thread (every ``RECHECK_AFTER`` without a
        refresh) and tqdm's monitor (which lowers ``miniters``) reset the threshold through
        ``_recheck``, so the next item looks at the clock.
        """
        iterable = self.iterable
        if iterable is None:
            raise TypeError(f"{type(self).__name__}() needs an iterable to iterate over")
        if self.disable:
            yield from iterable
            return
        mininterval = self.mininterval
        last_print_t: float = self.last_print_t
        min_start_t = self.start_t + self.delay
        n = counted = self.n  # counted: what self.n already holds of this loop's items
        clock = self._time
        threshold = 0
        step, looked_at = 1, last_print_t

        def recheck() -> None:
            nonlocal threshold
            threshold = 0

        self._recheck = recheck
        try:
            for obj in iterable:
                yield obj
                n += 1
                if n >= threshold:
                    now = clock()
                    if now - last_print_t >= mininterval and now >= min_start_t:
                        if not self._explicit:  # else item() scopes count
                            shown = std_tqdm.update(self, n - counted)
                            if not shown:  # tqdm's miniters said no; the clock says yes
                                self.refresh()
                                self.last_print_n, self.last_print_t = self.n, now
                        counted, last_print_t = n, now
                        self._check_cancelled()
                        threshold = math.ceil(n + self.miniters)
                        step = 1
                    else:
                        if now - looked_at < 0.001:
                            step = min(step * 2, MAX_STEP)
                        elif step > 1 and now - looked_at > 0.01:
                            step //= 2
                        threshold = n + step
                    looked_at = now
        except GeneratorExit:
            self._sync(n - counted)
            self._left_early()
            raise
        except JobCancelled:
            self._sync(n - counted)
            self._end("cancelled", "cancelled")
            raise
        except BaseException as error:
            self._sync(n - counted)
            self._end("failed", _describe(error))
            raise
        self._sync(n - counted)
        self._end("completed")

    def _sync(self, uncounted: int) -> None:
        self._recheck = None
        if not self._explicit:
            self.n += uncounted

    def _left_early(self) -> None:
        """The loop stopped before the end: ``break``/``return`` or an exception in its body.

        Python closes the generator in both cases without saying which. The instruction the
        loop's frame stopped at tells: one that drops, stores or returns the iterator
        (``break``, ``return``, ``del``, a ``zip`` that ran out) is a normal stop; any other
        is the one that raised, and the exception is unwinding the frame.
        """
        try:
            frame = sys._getframe(2)
            opname = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        except (ValueError, IndexError):
            opname = "POP_TOP"  # closed by the garbage collector, far from any loop
        if opname.startswith(_NORMAL_STOP_PREFIXES):
            self._end("completed", f"stopped early after {_count(self.n)} items")
        else:
            self._end("failed", "the loop raised an exception")

    def __aiter__(self) -> tqdm[T]:
        iterable = self.iterable
        if hasattr(iterable, "__anext__"):
            self._anext, self._awaitable = iterable.__anext__, True
        elif hasattr(iterable, "__aiter__"):
            self._anext, self._awaitable = iterable.__aiter__().__anext__, True
        else:
            self._anext, self._awaitable = iter(iterable).__next__, False
        self._handed = False
        return self

    async def __anext__(self) -> T:
        """``async for``: an item counts once the body that got it is done."""
        if self._handed:
            self.update()
        try:
            obj = await self._anext() if self._awaitable else self._anext()
        except (StopIteration, StopAsyncIteration):
            self._handed = False
            self._end("completed")
            raise StopAsyncIteration from None
        except BaseException as error:
            self._end("failed", _describe(error))
            raise
        self._handed = True
        return obj  # type: ignore[no-any-return]

    # ----- closing -----------------------------------------------------------------------

    def __enter__(self) -> tqdm[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._end("completed")
        elif isinstance(exc, JobCancelled):
            self._end("cancelled", "cancelled")
        else:
            self._end("failed", _describe(exc))

    def close(self) -> None:
        """End the job (completed, unless it failed) and let tqdm clean up."""
        self._end("completed")

    def reset(self, total: float | None = None) -> None:
        """A new round of the same bar: the round so far ends, a new job begins (counters
        on the server never go down)."""
        if self.disable or self._link is None:
            super().reset(total=total)
            return
        self._finish("completed", "")
        self._closed = False
        self.job_id = uuid.uuid4().hex
        self.status = "processing"
        self.started_at, self.finished_at = time.time(), None
        self._errors = self._success_sent = 0
        self.message = ""
        self._samples = []
        self._link = None
        display, self._display = self._display, None
        if display is not None:
            try:
                display.follow(self.job_id, self.name)
                self._display = display
            except Exception:
                pass
        self.n = 0
        if total is not None:
            self.total = None if total == float("inf") else total
        self._open(show=False)
        if self._link is not None:
            self._link.display = self._display
        super().reset(total=total)

    def _end(self, status: str, message: str = "") -> None:
        if self._closed:
            return
        self._finish(status, message)
        with contextlib.suppress(Exception):
            std_tqdm.close(self)

    def _finish(self, status: str, message: str) -> None:
        """Hand the final state to the sender (it never waits) and show it."""
        self._closed = True
        if self.disable and self._link is None:
            return
        self.status = status
        if message:
            self.message = _clean(message, MAX_MESSAGE_LENGTH)
        self.finished_at = time.time()
        link = self._link
        state = self._state()
        if link is not None:
            link.final_at = time.monotonic()
            link.final = state
            self._sender.poke(CHILD_CREATE_DELAY if link.parent is not None else 0.0)
        if self._display is not None:
            with contextlib.suppress(Exception):
                self._display.finish(state["_job"], remove=not link.leave if link else False)

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True):
                self._end("completed")
        except Exception:
            pass

    # ----- the state sent ------------------------------------------------------------------

    def _parent_id(self) -> str | None:
        parent = self._parent
        return parent.job_id if parent is not None else os.environ.get(PARENT_ENV) or None

    def _unit(self) -> str:
        unit = _clean(str(getattr(self, "unit", "") or ""), MAX_UNIT_LENGTH).strip()
        return unit if unit and unit.isprintable() else DEFAULT_UNIT

    def _postfix(self) -> str:
        return _clean(str(getattr(self, "postfix", "") or ""), MAX_POSTFIX_LENGTH)

    def _total(self) -> int | None:
        total = self.total
        if total is None or total != total or total == float("inf"):
            return None
        return _count(total)

    def _state(self) -> dict[str, Any]:
        success, errors, total = self.success, self._errors, self._total()
        if total is not None and success + errors > total:
            total = success + errors
        state: dict[str, Any] = {
            "success": success,
            "errors": errors,
            "total": total,
            "name": self.name,
            "postfix": self._postfix(),
        }
        if self.message:
            state["message"] = self.message
        if self._samples:
            state["error_samples"] = list(self._samples)
        if is_final(self.status) and self.status in REPORTABLE_STATUSES:  # the server ends it
            state["status"] = self.status
        state["_job"] = self.as_job(success, errors, total)
        return state

    def as_job(
        self, success: int | None = None, errors: int | None = None, total: int | None = None
    ) -> dict[str, Any]:
        """The job as this process knows it, in the server's Job shape."""
        return job_document(
            job_id=self.job_id,
            name=self.name,
            kind="reported",
            status=self.status,
            total=self._total() if total is None else total,
            success=self.success if success is None else success,
            errors=self._errors if errors is None else errors,
            now=time.time(),
            message=self.message,
            error_samples=self._samples,
            created_at=self.started_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            parent_id=self._parent_id(),
            unit=self._unit(),
            unit_scale=bool(getattr(self, "unit_scale", False)),
            postfix=self._postfix(),
            leave=self._leave(),
        )

    @property
    def job(self) -> dict[str, Any]:
        """The server's latest view of the job if it has one, else this process's."""
        link = self._link
        if link is not None and link.reachable and link.last_job:
            return link.last_job
        return self.as_job()

    @property
    def reported(self) -> bool:
        """Whether the server has the job (False: no server, or it was unreachable)."""
        link = self._link
        return link is not None and link.reachable and link.last_job is not None

    def __repr__(self) -> str:
        return describe_job(self.as_job())


# tqdm's positional parameters, in order (its documented signature).
_POSITIONAL = ("iterable", "desc", "total", "leave", "file", "ncols", "mininterval",
               "maxinterval", "miniters", "ascii", "disable", "unit", "unit_scale")  # fmt: skip


def _disabled_defaults(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """What ``as_job`` reads, for a disabled bar (tqdm does not store it)."""
    given = {**dict(zip(_POSITIONAL, args, strict=False)), **kwargs}
    return {
        "desc": given.get("desc") or "",
        "unit": given.get("unit", DEFAULT_UNIT),
        "unit_scale": given.get("unit_scale", False),
        "postfix": given.get("postfix"),
    }


def _disabled_by_environment() -> bool:
    return os.environ.get("JUPYTER_PROGRESS_DISABLE", "").lower() in {"1", "true"}


def trange(*args: Any, **kwargs: Any) -> tqdm[int]:
    """``tqdm(range(*args), **kwargs)``."""
    return tqdm(range(*args), **kwargs)


class _TextBar:
    """Plain-text progress on stderr: one rewritten line on a terminal, sparse lines in logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.interactive else 10.0
        self.shown_at = 0.0

    def show(self, job: dict[str, Any], *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown_at < self.interval:
            return
        self.shown_at = now
        line = describe_progress(job)
        try:
            if self.interactive:
                self.stream.write("\r" + line + ("\n" if final else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except Exception:
            pass


class track(tqdm[T]):
    """``tqdm`` with the text line of ``jupyter progress watch`` outside a kernel, and
    ``update()`` counting per item instead of by iteration (as ``item()`` does).

    ``for x in track(items, name="convert"): ...`` counts each item as a success.
    """

    _default_name = "track"

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *args: Any,
        file: TextIO | None = None,
        **kwargs: Any,
    ) -> None:
        self._text: _TextBar | None = None
        self._text_file = file
        kwargs.setdefault("gui", True)  # tqdm draws nothing; _draw writes our line
        super().__init__(iterable, *args, **kwargs)
        if not self.disable and not self._kernel:
            self._text = _TextBar(file)
            self.gui = False

    def _draw(self, msg: str | None, pos: int | None) -> None:
        if self._text is not None and msg is None:
            self._text.show(self.as_job(), final=self._closed)

    def clear(self, nolock: bool = False) -> None:
        pass

    def update(self, n: int | float = 1) -> bool | None:
        """Count ``n`` more successful items (switches off counting by iteration)."""
        self._explicit = True
        self._advance(n)
        return None

    def _finish(self, status: str, message: str) -> None:
        super()._finish(status, message)
        if self._text is not None:
            self._text.show(self.as_job(), final=True)
            self._text = None


class _ItemScope:
    """One item of ``bar.item(x)``: counts success, or an error it suppresses."""

    def __init__(self, bar: tqdm[Any], item: Any) -> None:
        self.bar = bar
        self.item = item

    def __enter__(self) -> Any:
        return self.item

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.bar._advance(1)
            return False
        if not isinstance(exc, Exception) or isinstance(exc, JobCancelled):
            return False  # KeyboardInterrupt and friends still stop the loop
        self.bar.error(self.item, exc)
        return True
