"""The REST API of the contract, over real HTTP against a real Jupyter server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from helpers.job_helpers import create


async def test_create_job_returns_201_and_the_job(api: httpx.AsyncClient) -> None:
    job = await create(api, name="convert files", total=100)
    assert job["name"] == "convert files"
    assert job["kind"] == "reported"
    assert job["status"] == "processing"
    assert job["progress"] == {
        "processed": 0,
        "total": 100,
        "success": 0,
        "errors": 0,
        "percentage": 0.0,
    }
    assert job["created_at"].endswith("Z")
    assert job["finished_at"] is None
    fetched = (await api.get(f"jobs/{job['job_id']}")).json()
    assert fetched["job_id"] == job["job_id"]


async def test_progress_reports_are_absolute_and_never_go_down(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=100)
    url = f"jobs/{job['job_id']}/progress"
    first = await api.post(url, json={"success": 48, "errors": 2, "message": "b.csv"})
    assert first.status_code == 200
    assert first.json()["progress"]["processed"] == 50
    assert first.json()["progress"]["percentage"] == 50.0
    retried = await api.post(url, json={"success": 48, "errors": 2})
    assert retried.json()["progress"]["processed"] == 50
    lower = await api.post(url, json={"success": 10})
    assert lower.json()["progress"]["success"] == 48
    assert lower.json()["message"] == "b.csv"


async def test_progress_report_above_total_is_400(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=10)
    response = await api.post(f"jobs/{job['job_id']}/progress", json={"success": 11})
    assert response.status_code == 400
    assert "exceed" in response.json()["message"]
    assert (await api.get(f"jobs/{job['job_id']}")).json()["progress"]["processed"] == 0


async def test_completed_without_total_sets_total_to_processed(api: httpx.AsyncClient) -> None:
    job = await create(api, name="stream", total=None)
    assert job["progress"]["percentage"] is None
    done = await api.post(
        f"jobs/{job['job_id']}/progress", json={"success": 7, "status": "completed"}
    )
    assert done.json()["status"] == "completed"
    assert done.json()["progress"]["total"] == 7
    assert done.json()["progress"]["percentage"] == 100.0
    assert done.json()["finished_at"] is not None


async def test_report_to_a_finished_job_is_409(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=2)
    url = f"jobs/{job['job_id']}/progress"
    await api.post(url, json={"success": 2, "status": "completed"})
    again = await api.post(url, json={"success": 2})
    assert again.status_code == 409
    assert again.json()["message"]


async def test_error_samples_are_kept_bounded_and_deduplicated(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=1000)
    url = f"jobs/{job['job_id']}/progress"
    samples = [{"item": f"{i}.csv", "error": "ValueError: bad"} for i in range(100)]
    await api.post(url, json={"errors": 100, "error_samples": samples})
    await api.post(url, json={"errors": 100, "error_samples": samples[:5]})
    more = [{"item": f"x{i}.csv", "error": "KeyError: k"} for i in range(10)]
    final = await api.post(url, json={"errors": 110, "error_samples": more})
    assert len(final.json()["error_samples"]) == 100
    assert final.json()["error_samples"][0] == {"item": "0.csv", "error": "ValueError: bad"}


async def test_list_is_newest_first_and_filters_by_status(api: httpx.AsyncClient) -> None:
    first = await create(api, name="first", total=1)
    second = await create(api, name="second", total=1)
    await api.post(f"jobs/{first['job_id']}/progress", json={"success": 1, "status": "completed"})
    jobs = (await api.get("jobs")).json()["jobs"]
    assert [j["name"] for j in jobs] == ["second", "first"]
    running = (await api.get("jobs", params={"status": "processing"})).json()["jobs"]
    assert [j["job_id"] for j in running] == [second["job_id"]]
    bad = await api.get("jobs", params={"status": "sleeping"})
    assert bad.status_code == 400


async def test_cancel_is_202_then_200_and_409_when_finished(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=10)
    url = f"jobs/{job['job_id']}/cancel"
    first = await api.post(url)
    assert first.status_code == 202
    assert first.json()["status"] == "cancelled"
    assert (await api.post(url)).status_code == 200
    report = await api.post(f"jobs/{job['job_id']}/progress", json={"success": 1})
    assert report.status_code == 409
    done = await create(api, name="y", total=1)
    await api.post(f"jobs/{done['job_id']}/progress", json={"success": 1, "status": "completed"})
    assert (await api.post(f"jobs/{done['job_id']}/cancel")).status_code == 409


async def test_delete_is_409_while_running_and_204_when_finished(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=10)
    assert (await api.delete(f"jobs/{job['job_id']}")).status_code == 409
    await api.post(f"jobs/{job['job_id']}/cancel")
    assert (await api.delete(f"jobs/{job['job_id']}")).status_code == 204
    assert (await api.get(f"jobs/{job['job_id']}")).status_code == 404


async def test_client_chosen_job_id_is_accepted_once(api: httpx.AsyncClient) -> None:
    job_id = "0123456789abcdef0123456789abcdef"
    job = await create(api, name="x", job_id=job_id)
    assert job["job_id"] == job_id
    again = await api.post("jobs", json={"kind": "reported", "name": "x", "job_id": job_id})
    assert again.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"kind": "teleport"}',
        '{"name": 5}',
        '{"name": "' + "n" * 201 + '"}',
        '{"total": -1}',
        '{"total": 1.5}',
        '{"total": true}',
        '{"total": "10"}',
        '{"total": 10000000000000}',
        '{"colour": "red"}',
        '{"job_id": "../../etc"}',
        '{"kind": "python", "target": "os.system", "items": []}',
        '{"kind": "python", "target": "m:f", "items": "abc"}',
        '{"kind": "python", "target": "m:f", "items": [], "concurrency": 0}',
        '{"kind": "python", "target": "m:f", "items": [], "concurrency": 100000}',
        '{"kind": "notebook", "path": "report.txt"}',
        '{"kind": "notebook", "path": "a.ipynb", "parameters": {"not an id": 1}}',
    ],
)
async def test_bad_create_bodies_are_400_with_a_message(api: httpx.AsyncClient, body: str) -> None:
    response = await api.post("jobs", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    assert "Traceback" not in response.text
    assert (await api.get("jobs")).json()["jobs"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"success": -1},
        {"success": "1"},
        {"errors": None},
        {"status": "cancelled"},
        {"status": "pending"},
        {"message": 5},
        {"message": "m" * 1001},
        {"error_samples": "oops"},
        {"error_samples": [{"item": "a", "error": "b", "extra": 1}]},
        {"error_samples": [{"item": "a"}] * 101},
        {"unknown": 1},
    ],
)
async def test_bad_progress_bodies_are_400_and_change_nothing(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    job = await create(api, name="x", total=10)
    response = await api.post(f"jobs/{job['job_id']}/progress", json=body)
    assert response.status_code == 400, response.text
    after = (await api.get(f"jobs/{job['job_id']}")).json()
    assert after["progress"] == job["progress"]
    assert after["status"] == "processing"


async def test_unknown_or_malformed_job_ids(api: httpx.AsyncClient) -> None:
    unknown = "f" * 32
    assert (await api.get(f"jobs/{unknown}")).status_code == 404
    assert (await api.post(f"jobs/{unknown}/progress", json={"success": 1})).status_code == 404
    assert (await api.post(f"jobs/{unknown}/cancel")).status_code == 404
    assert (await api.delete(f"jobs/{unknown}")).status_code == 404
    assert (await api.get("jobs/not-a-job-id")).status_code == 400


async def test_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await api.post("jobs", content=big)
    assert response.status_code == 413
    assert response.json()["message"]
    assert (await api.get("jobs")).json()["jobs"] == []


ENDPOINTS = [
    ("GET", "jobs"),
    ("POST", "jobs"),
    ("GET", "jobs/{id}"),
    ("POST", "jobs/{id}/progress"),
    ("POST", "jobs/{id}/cancel"),
    ("DELETE", "jobs/{id}"),
    ("DELETE", "jobs?status=finished"),
    ("GET", "events"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("credentials", ["none", "wrong-token"])
async def test_every_endpoint_refuses_without_valid_credentials(
    api: httpx.AsyncClient, api_url: str, method: str, path: str, credentials: str
) -> None:
    job = await create(api, name="secret", total=3)
    headers = {} if credentials == "none" else {"Authorization": "token wrong"}
    async with httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=10) as anonymous:
        response = await anonymous.request(
            method, path.format(id=job["job_id"]), headers=headers, json={"success": 1}
        )
    assert response.status_code == 403
    assert "secret" not in response.text
    after = (await api.get(f"jobs/{job['job_id']}")).json()
    assert after["progress"]["processed"] == 0
    assert after["status"] == "processing"


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[0] != "GET"])
async def test_cookie_without_xsrf_is_refused_on_mutating_requests(
    api: httpx.AsyncClient, api_url: str, jp_auth_header: dict[str, str], method: str, path: str
) -> None:
    job = await create(api, name="x", total=3)
    token = jp_auth_header["Authorization"].split()[-1]
    async with httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=10) as browser:
        login = await browser.get("jobs", params={"token": token})
        assert login.status_code == 200
        assert browser.cookies, "a ?token= GET sets the login cookie"
        reading = await browser.get("jobs")
        assert reading.status_code == 200
        response = await browser.request(method, path.format(id=job["job_id"]), json={"success": 1})
        assert response.status_code == 403
        # Any HTML page the server renders (here its 404 page) sets the _xsrf cookie.
        await browser.get(api_url.replace("jupyter-progress/api/", "no-such-page"))
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf, "a page sets the _xsrf cookie that a page's script reads"
        if xsrf:
            allowed = await browser.post(
                f"jobs/{job['job_id']}/progress",
                json={"success": 1},
                headers={"X-XSRFToken": xsrf},
            )
            assert allowed.status_code == 200
    after = (await api.get(f"jobs/{job['job_id']}")).json()
    assert after["status"] == "processing"


async def test_chunked_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    try:
        response = await api.post("jobs", content=chunks())
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server answered 413 and closed while the client was still sending
    else:
        assert response.status_code == 413
    assert (await api.get("jobs")).json()["jobs"] == []
