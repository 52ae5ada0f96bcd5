"""``track()`` against a real server process, and with no server at all."""

from __future__ import annotations

import io
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import jupyter_progress.tracking
from jupyter_progress.client import ProgressClient, ServerInfo, SSEParser, find_server
from jupyter_progress.tracking import JobCancelled, flush, track

from helpers.server_process import ServerProcess, running_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("track-server")
    with running_server(base, extra_args=["--JupyterProgress.reporter_timeout=3"]) as server:
        yield server


@pytest.fixture
def info(live_server: ServerProcess) -> ServerInfo:
    return ServerInfo(live_server.url, live_server.token)


def job_of(info: ServerInfo, bar: track[Any]) -> dict[str, Any]:
    """The server's view of a tracked job, once the queued reports are sent (a loop's
    end does not wait for them)."""
    assert flush(10)
    with ProgressClient(info) as client:
        return client.get_job(bar.job_id)


class Subscriber(threading.Thread):
    """A blocking reader of the real stream, like ``curl -N``, in a thread."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.stop = False

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=30)
        with (
            httpx.Client(trust_env=False, timeout=timeout) as http,
            http.stream("GET", self.server.api_url + "events", headers=self.server.headers) as r,
        ):
            self.connected.set()
            parser = SSEParser()
            for line in r.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    self.events.append((time.monotonic(), event.data))
                if self.stop:
                    return

    def of(self, job_id: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, data) for at, data in self.events if data.get("job_id") == job_id]


def test_two_subscribers_see_every_item_while_the_loop_runs(
    live_server: ServerProcess, info: ServerInfo
) -> None:
    readers = [Subscriber(live_server), Subscriber(live_server)]
    for reader in readers:
        reader.start()
        assert reader.connected.wait(10)
    bar = track(range(8), name="two readers", server=info, file=io.StringIO())
    for _ in bar:
        time.sleep(0.35)  # > the 0.1 s report interval, even on a loaded machine
    loop_ended = time.monotonic()
    time.sleep(0.5)
    for reader in readers:
        reader.stop = True
        seen = reader.of(bar.job_id)
        processed = [data["progress"]["processed"] for _, data in seen]
        assert set(range(1, 9)) <= set(processed), processed
        assert seen[-1][1]["status"] == "completed"
        first_item_at = next(at for at, data in seen if data["progress"]["processed"] == 1)
        assert first_item_at < loop_ended, "items arrive while the loop runs, not at its end"


def test_loop_exception_fails_the_job_and_propagates_unchanged(info: ServerInfo) -> None:
    error = ValueError("bad row 3")
    bar = track(range(10), name="raises", server=info, file=io.StringIO())
    with pytest.raises(ValueError) as caught:
        for item in bar:
            if item == 3:
                raise error
    assert caught.value is error
    job = job_of(info, bar)
    assert job["status"] == "failed"
    assert job["progress"]["processed"] == 3


def test_break_ends_the_job_completed_with_a_note(info: ServerInfo) -> None:
    bar = track(range(10), name="breaks", server=info, file=io.StringIO())
    for item in bar:
        if item == 4:
            break
    job = job_of(info, bar)
    assert job["status"] == "completed"
    assert job["progress"]["processed"] == 4
    assert "stopped early" in job["message"]


def test_item_scope_counts_successes_and_errors_with_samples(info: ServerInfo) -> None:
    with track(total=6, name="per item", server=info, file=io.StringIO()) as bar:
        for value in range(6):
            with bar.item(value):
                if value % 3 == 0:
                    raise KeyError(value)
    job = job_of(info, bar)
    assert job["status"] == "completed"
    assert job["progress"] == {
        "processed": 6,
        "total": 6,
        "success": 4,
        "errors": 2,
        "percentage": 100.0,
    }
    assert job["error_samples"] == [
        {"item": "0", "error": "KeyError: 0"},
        {"item": "3", "error": "KeyError: 3"},
    ]


def test_cancel_from_elsewhere_stops_the_loop(info: ServerInfo) -> None:
    bar = track(range(1000), name="cancel me", server=info, file=io.StringIO())
    done = []
    with pytest.raises(JobCancelled):
        for item in bar:
            if item == 5:
                with ProgressClient(info) as client:
                    assert client.cancel(bar.job_id)["status"] == "cancelled"
            done.append(item)
            time.sleep(0.02)
    assert len(done) < 1000
    with ProgressClient(info) as client:
        assert client.get_job(bar.job_id)["status"] == "cancelled"


def test_no_server_runs_the_loop_and_prints_text(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    out = io.StringIO()
    started = time.monotonic()
    items = list(
        track(
            range(100),
            name="offline",
            server=ServerInfo(f"http://127.0.0.1:{closed_port}/"),
            file=out,
        )
    )
    assert items == list(range(100))
    assert time.monotonic() - started < 5
    assert "offline: 100/100 100.0%" in out.getvalue()
    assert "[completed]" in out.getvalue()


def test_unresponsive_server_costs_the_loop_nothing_noticeable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        bar = track(
            range(20),
            name="silent",
            server=ServerInfo(f"http://127.0.0.1:{port}/"),
            file=io.StringIO(),
        )
        starts = []
        for _ in bar:
            starts.append(time.monotonic())  # item to item: the body and track's own work
            time.sleep(0.01)
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert max(gaps) < 0.5
        assert time.monotonic() - started < 5
        assert not bar.reported


def test_disable_is_a_plain_loop() -> None:
    out = io.StringIO()
    assert list(track(range(5), disable=True, file=out)) == list(range(5))
    assert out.getvalue() == ""


def test_find_server_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PROGRESS_URL", "http://127.0.0.1:1/base/")
    monkeypatch.setenv("JUPYTER_PROGRESS_TOKEN", "abc")
    server = find_server()
    assert server == ServerInfo("http://127.0.0.1:1/base/", "abc")
    assert server.api_url == "http://127.0.0.1:1/base/jupyter-progress/api/"


def test_find_server_picks_the_parent_server_then_the_only_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTER_PROGRESS_URL", raising=False)

    def write(name: str, pid: int, url: str) -> None:
        info = {"url": url, "token": name, "pid": pid}
        (tmp_path / f"jpserver-{name}.json").write_text(json.dumps(info))

    write("parent", os.getppid(), "http://127.0.0.1:8001/")
    write("other", os.getpid(), "http://127.0.0.1:8002/")
    write("dead", 2**22 + 12345, "http://127.0.0.1:8003/")
    assert find_server(runtime_dir=tmp_path) == ServerInfo("http://127.0.0.1:8001/", "parent")
    (tmp_path / "jpserver-parent.json").unlink()
    assert find_server(runtime_dir=tmp_path) == ServerInfo("http://127.0.0.1:8002/", "other")
    write("third", os.getpid(), "http://127.0.0.1:8004/")
    assert find_server(runtime_dir=tmp_path) is None


def test_slow_first_item_keeps_the_job_alive_with_heartbeats(
    info: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: nothing was sent before the first item ended, so the watchdog failed it."""
    monkeypatch.setattr(jupyter_progress.tracking, "HEARTBEAT_INTERVAL", 0.5)
    bar = track(range(2), name="slow first item", server=info, file=io.StringIO())
    for _ in bar:
        time.sleep(4.5)  # longer than the server's reporter_timeout of 3 s
    job = job_of(info, bar)
    assert job["status"] == "completed"
    assert job["progress"]["processed"] == 2


def test_zip_and_del_are_normal_stops(info: ServerInfo) -> None:
    zipped = track(range(10), name="zipped", server=info, file=io.StringIO())
    for _pair in zip(zipped, range(3), strict=False):
        pass
    held = track(range(10), name="held", server=info, file=io.StringIO())
    iterator = iter(held)
    next(iterator)
    del iterator
    assert flush(10)
    with ProgressClient(info) as client:
        assert client.get_job(zipped.job_id)["status"] == "completed"
        assert client.get_job(held.job_id)["status"] == "completed"


def test_huge_exception_message_still_ends_the_job_failed(info: ServerInfo) -> None:
    bar = track(range(3), name="huge error", server=info, file=io.StringIO())
    with pytest.raises(RuntimeError):
        for _ in bar:
            raise RuntimeError("\x00\ud800" + "x" * 50_000)
    job = job_of(info, bar)
    assert job["status"] == "failed"
    assert len(job["message"]) <= 1000
