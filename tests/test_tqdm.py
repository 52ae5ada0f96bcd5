"""``jupyter_progress.tqdm`` as a drop-in: child ``python`` processes against a real server,
tqdm's own entry points (positional arguments, ``pandas``, ``contrib.concurrent``, ``async
for``), nesting, ``patch_tqdm`` and a loop's end against a server that never answers."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.client import SSEParser

from helpers.server_process import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tqdm-server")) as live:
        yield live


class Subscriber(threading.Thread):
    """A blocking reader of the real, unfiltered stream in a thread."""

    def __init__(self, server: ServerProcess, params: dict[str, Any] | None = None) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.params = params or {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = threading.Event()

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=60)
        with (
            httpx.Client(trust_env=False, timeout=timeout) as http,
            http.stream(
                "GET", self.server.api_url + "events", params=self.params,
                headers=self.server.headers,
            ) as response,
        ):  # fmt: skip
            self.connected.set()
            parser = SSEParser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    self.events.append((event.type, event.data))

    def of(self, job_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, data) for kind, data in self.events if data.get("job_id") == job_id]


def subscribe(server: ServerProcess, **params: Any) -> Subscriber:
    reader = Subscriber(server, params)
    reader.start()
    assert reader.connected.wait(10)
    return reader


def run_child(server: ServerProcess | None, code: str, **env: str) -> Any:
    """Run ``code`` in a fresh ``python``; it prints one JSON line last, which is returned."""
    environ = {key: value for key, value in os.environ.items() if key != "JUPYTER_PROGRESS_PARENT"}
    environ.update(env)
    if server is not None:
        environ.update(JUPYTER_PROGRESS_URL=server.url, JUPYTER_PROGRESS_TOKEN=server.token)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def named(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    return [job for job in get(server, "jobs", limit=1000)["jobs"] if job["name"] == name]


def get(server: ServerProcess, path: str, **params: Any) -> Any:
    with server.client() as http:
        response = http.get(path, params=params)
        response.raise_for_status()
        return response.json()


def test_positional_arguments_as_in_tqdm(server: ServerProcess) -> None:
    ids = run_child(
        server,
        """
        import io, json
        from jupyter_progress import tqdm, track, trange
        a = tqdm(range(5), "convert", 5, True, io.StringIO())
        for _ in a: pass
        b = trange(4, desc="ranged", unit="files")
        for _ in b: pass
        c = track(range(3), "tracked")
        for _ in c: pass
        d = tqdm(None, "manual", 10)
        d.update(4); d.update(6); d.close()
        print(json.dumps([bar.job_id for bar in (a, b, c, d)]))
        """,
    )
    jobs = [get(server, f"jobs/{job_id}") for job_id in ids]
    assert [(j["name"], j["progress"]["processed"], j["progress"]["total"]) for j in jobs] == [
        ("convert", 5, 5),
        ("ranged", 4, 4),
        ("tracked", 3, 3),
        ("manual", 10, 10),
    ]
    assert {j["status"] for j in jobs} == {"completed"}
    assert jobs[1]["unit"] == "files"
    assert all(j["parent_id"] is None for j in jobs)


def test_unit_postfix_and_description_changes_reach_rest_and_the_stream(
    server: ServerProcess,
) -> None:
    reader = subscribe(server)
    job_id = run_child(
        server,
        """
        import json, time
        from jupyter_progress import tqdm
        bar = tqdm(total=3_000_000, desc="download", unit="B", unit_scale=True)
        bar.update(1_000_000)
        time.sleep(0.3)
        bar.set_description("epoch 2")
        time.sleep(0.3)
        bar.set_postfix(loss=0.31)
        time.sleep(0.3)
        bar.update(2_000_000)
        bar.close()
        print(json.dumps(bar.job_id))
        """,
    )
    job = get(server, f"jobs/{job_id}")
    assert (job["name"], job["unit"], job["unit_scale"], job["postfix"]) == (
        "epoch 2",
        "B",
        True,
        "loss=0.31",
    )
    assert job["progress"]["processed"] == 3_000_000 and job["status"] == "completed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        d.get("status") == "completed" for _, d in reader.of(job_id)
    ):
        time.sleep(0.05)
    seen = [data for kind, data in reader.of(job_id) if kind == "job_updated"]
    names = [data["name"] for data in seen]
    assert names[0] == "download" and names[-1] == "epoch 2"
    assert names.index("epoch 2") < next(i for i, d in enumerate(seen) if d["postfix"])
    assert seen[-1]["postfix"] == "loss=0.31" and seen[-1]["status"] == "completed"


def test_nested_bars_are_children_and_leave_false_ones_go_away(server: ServerProcess) -> None:
    reader = subscribe(server)
    ids = run_child(
        server,
        """
        import json, time
        from jupyter_progress import tqdm
        kept, dropped = [], []
        outer = tqdm(range(2), desc="epochs")
        for epoch in outer:
            inner = tqdm(range(3), desc=f"batches {epoch}", leave=False)
            for _ in inner:
                time.sleep(0.15)  # long enough for the server to hear of it
            dropped.append(inner.job_id)
            done = tqdm(range(2), desc=f"eval {epoch}")
            for _ in done:
                pass
            kept.append(done.job_id)
        print(json.dumps({"outer": outer.job_id, "kept": kept, "dropped": dropped}))
        """,
    )
    outer = ids["outer"]
    children = get(server, "jobs", parent=outer)["jobs"]
    assert sorted(child["job_id"] for child in children) == sorted(ids["kept"])
    assert {child["parent_id"] for child in children} == {outer}
    top_level = {job["job_id"] for job in get(server, "jobs")["jobs"]}
    assert outer in top_level and not top_level & set(ids["kept"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        any(kind == "job_removed" for kind, _ in reader.of(job_id)) for job_id in ids["dropped"]
    ):
        time.sleep(0.05)
    for job_id in ids["dropped"]:
        kinds = [kind for kind, _ in reader.of(job_id)]
        assert "job_updated" in kinds and kinds[-1] == "job_removed", kinds
        with server.client() as http:
            assert http.get(f"jobs/{job_id}").status_code == 404


def test_process_map_with_tqdm_class_and_real_workers(server: ServerProcess) -> None:
    job = run_child(
        server,
        """
        import json, math
        from tqdm.contrib.concurrent import process_map
        from jupyter_progress import tqdm
        roots = process_map(math.sqrt, range(40), tqdm_class=tqdm, max_workers=2,
                            desc="roots in processes")
        assert roots == [math.sqrt(i) for i in range(40)]
        print(json.dumps("done"))
        """,
    )
    assert job == "done"
    (found,) = named(server, "roots in processes")
    assert found["progress"]["processed"] == 40 and found["status"] == "completed"


def test_thread_map_after_patch_tqdm(server: ServerProcess) -> None:
    run_child(
        server,
        """
        import json
        from tqdm.contrib.concurrent import thread_map  # binds tqdm.auto's class: rebound
        import jupyter_progress
        jupyter_progress.patch_tqdm()
        import tqdm.auto, tqdm.notebook, tqdm.autonotebook
        for module in (tqdm.auto, tqdm.notebook, tqdm.autonotebook):
            assert module.tqdm is jupyter_progress.tqdm, module
        assert tqdm.auto.trange is jupyter_progress.trange
        squares = thread_map(lambda x: x * x, range(25), max_workers=3, desc="squares in threads")
        assert squares == [x * x for x in range(25)]
        print(json.dumps("done"))
        """,
    )
    (found,) = named(server, "squares in threads")
    assert found["progress"]["processed"] == 25 and found["status"] == "completed"


def test_a_module_that_bound_tqdm_before_the_patch_keeps_its_class(tmp_path: Path) -> None:
    """The documented limit of ``patch_tqdm``."""
    result = run_child(
        None,
        """
        import json
        from tqdm.auto import tqdm as bound_before
        import jupyter_progress
        jupyter_progress.patch_tqdm()
        from tqdm.auto import tqdm as bound_after
        print(json.dumps([bound_before is jupyter_progress.tqdm,
                          bound_after is jupyter_progress.tqdm]))
        """,
        JUPYTER_PROGRESS_DISABLE="1",
    )
    assert result == [False, True]


def test_pandas_progress_apply(server: ServerProcess) -> None:
    pytest.importorskip("pandas")
    run_child(
        server,
        """
        import json
        import pandas as pd
        from jupyter_progress import tqdm
        tqdm.pandas(desc="pandas rows")
        frame = pd.DataFrame({"a": range(30), "b": range(30)})
        sums = frame.progress_apply(lambda row: row["a"] + row["b"], axis=1)
        assert list(sums) == [2 * i for i in range(30)]
        print(json.dumps("done"))
        """,
    )
    (found,) = named(server, "pandas rows")
    assert found["progress"]["processed"] == 30 and found["status"] == "completed"


def test_async_for_over_async_and_plain_iterables(server: ServerProcess) -> None:
    ids = run_child(
        server,
        """
        import asyncio, json
        from jupyter_progress import tqdm

        async def numbers(n):
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        async def main():
            got, bars = [], []
            bars.append(tqdm(numbers(4), total=4, desc="async gen"))
            async for i in bars[-1]:
                got.append(i)
            bars.append(tqdm(range(3), desc="async over a list"))
            async for i in bars[-1]:
                got.append(i)
            assert got == [0, 1, 2, 3, 0, 1, 2]
            return [bar.job_id for bar in bars]

        print(json.dumps(asyncio.run(main())))
        """,
    )
    jobs = [get(server, f"jobs/{job_id}") for job_id in ids]
    assert [(j["progress"]["processed"], j["status"]) for j in jobs] == [
        (4, "completed"),
        (3, "completed"),
    ]


def test_loop_exception_fails_the_job_and_propagates(server: ServerProcess) -> None:
    job_id = run_child(
        server,
        """
        import json
        from jupyter_progress import tqdm
        bar = tqdm(range(10), desc="raises")
        try:
            for i in bar:
                if i == 3:
                    raise KeyError("row 3")
        except KeyError as error:
            assert error.args == ("row 3",)
        print(json.dumps(bar.job_id))
        """,
    )
    job = get(server, f"jobs/{job_id}")
    assert job["status"] == "failed" and job["progress"]["processed"] == 3


def test_parent_from_the_environment(server: ServerProcess) -> None:
    with server.client() as http:
        parent = http.post("jobs", json={"kind": "reported", "name": "notebook job"}).json()
    job_id = run_child(
        server,
        """
        import json
        from jupyter_progress import tqdm
        bar = tqdm(range(3), desc="inside a notebook job")
        for _ in bar: pass
        print(json.dumps(bar.job_id))
        """,
        JUPYTER_PROGRESS_PARENT=parent["job_id"],
    )
    assert get(server, f"jobs/{job_id}")["parent_id"] == parent["job_id"]


def test_thirty_loops_against_a_server_that_never_answers_do_not_wait() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # accepts connections, never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = run_child(
            None,
            """
            import json, time
            from jupyter_progress import tqdm
            started = time.perf_counter()
            for loop in range(30):
                for _ in tqdm(range(1000), desc=f"loop {loop}"):
                    pass
            print(json.dumps(time.perf_counter() - started))
            """,
            JUPYTER_PROGRESS_URL=f"http://127.0.0.1:{port}/",
        )
        whole_process = time.monotonic() - started
    # If each loop's end waited for the server even 1 s, this would be 30 s.
    assert result < 5, result
    assert whole_process < 30, whole_process  # the exit flush is bounded too


def test_a_loop_that_slows_down_is_still_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the per-item threshold grew during a fast start and then hid a slow end."""
    from jupyter_progress.tracking import tqdm

    monkeypatch.setenv("JUPYTER_PROGRESS_URL", "http://127.0.0.1:9/")  # nothing listens
    seen: list[float] = []

    class Watched(tqdm):  # type: ignore[type-arg]
        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            seen.append(self.n)
            return super().display(msg, pos)

    def items() -> Iterator[int]:
        yield from range(200_000)  # fast
        for i in range(30):  # then slow: 3 s
            time.sleep(0.1)
            yield i

    bar = Watched(items(), total=200_030, file=io.StringIO())
    assert sum(1 for _ in bar) == 200_030
    assert bar.n == 200_030
    assert [n for n in seen if 200_000 < n < 200_030], seen


def test_reset_starts_a_new_job_and_write_still_prints(server: ServerProcess) -> None:
    ids = run_child(
        server,
        """
        import json
        from jupyter_progress import tqdm
        bar = tqdm(total=4, desc="round")
        bar.update(4)
        first = bar.job_id
        bar.reset(total=2)
        bar.set_postfix_str("second round")
        bar.update(1)
        tqdm.write("a line between bars")
        bar.close()
        print(json.dumps([first, bar.job_id]))
        """,
    )
    first, second = (get(server, f"jobs/{job_id}") for job_id in ids)
    assert ids[0] != ids[1]
    assert (first["status"], first["progress"]["processed"], first["progress"]["total"]) == (
        "completed",
        4,
        4,
    )
    assert (second["progress"]["processed"], second["progress"]["total"]) == (1, 2)
    assert second["postfix"] == "second round" and second["status"] == "completed"
