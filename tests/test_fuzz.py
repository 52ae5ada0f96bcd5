"""Thousands of generated bodies against a real server: never a 5xx, never a corrupted job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.server_process import ServerProcess, running_server

FIELDS = [
    "kind",
    "name",
    "total",
    "success",
    "errors",
    "message",
    "status",
    "error_samples",
    "job_id",
    "target",
    "items",
    "concurrency",
    "path",
    "parameters",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    json_values
    | st.sampled_from(["processing", "completed", "failed", "cancelled", "reported", "python"])
    | st.integers(min_value=-3, max_value=2000)
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), field_values, max_size=5)
nasty = st.sampled_from(
    [
        b"[" * 50_000,
        b'{"a":' * 5_000,
        b'{"name": "\\ud800"}',
        b'{"kind": "notebook", "path": "\\ud800.ipynb"}',
        b'{"message": "\\udfff"}',
        b'{"success": 1e400}',
        b'{"total": -0}',
        b"\xff\xfe",
    ]
)
raw_bodies = (
    st.binary(max_size=200)
    | bodies.map(lambda b: json.dumps(b).encode())
    | st.just(b"")
    | nasty
    | st.text(max_size=40).map(lambda t: json.dumps({"name": t, "message": t}).encode())
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("fuzz-server")) as process:
        yield process


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def job_state(http: httpx.Client, job_id: str) -> dict[str, Any]:
    job = http.get(f"jobs/{job_id}").json()
    job.pop("rate")
    job.pop("eta_seconds")
    return job


FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_generated_progress_reports_never_5xx_and_refused_ones_change_nothing(
    http: httpx.Client,
) -> None:
    target = http.post("jobs", json={"name": "fuzzed", "total": 1000}).json()["job_id"]
    control = http.post("jobs", json={"name": "control", "total": 10}).json()["job_id"]
    control_before = job_state(http, control)
    refused = 0

    @FUZZ
    @given(body=raw_bodies)
    def check(body: bytes) -> None:
        nonlocal refused, target
        before = job_state(http, target)
        response = http.post(f"jobs/{target}/progress", content=body)
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text
        if response.status_code >= 400:
            refused += 1
            assert response.json()["message"]
            assert job_state(http, target) == before
        if job_state(http, target)["status"] != "processing":
            target = http.post("jobs", json={"name": "fuzzed", "total": 1000}).json()["job_id"]

    check()
    assert refused > 600
    assert job_state(http, control) == control_before


def test_generated_create_bodies_never_5xx(http: httpx.Client) -> None:
    refused = 0

    @FUZZ
    @given(body=raw_bodies)
    def check(body: bytes) -> None:
        nonlocal refused
        count = len(http.get("jobs").json()["jobs"])
        response = http.post("jobs", content=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            refused += 1
            assert response.json()["message"]
            assert len(http.get("jobs").json()["jobs"]) == count

    check()
    assert refused > 600


def test_generated_stream_queries_never_5xx(http: httpx.Client) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        last_event_id=st.text(max_size=25),
        job=st.lists(st.text(max_size=40), max_size=3),
    )
    def check(last_event_id: str, job: list[str]) -> None:
        for params, headers in (
            ({"last_event_id": last_event_id, "job": job}, {}),
            ({"job": job}, {"Last-Event-ID": last_event_id.encode("utf-8", "replace")}),
        ):
            try:
                with http.stream(
                    "GET", "events", params=params, headers=headers, timeout=10
                ) as response:
                    assert response.status_code < 500
            except httpx.LocalProtocolError:
                pass  # a header httpx itself refuses to send

    check()
