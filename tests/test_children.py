"""Nested jobs (issue 8, server part): the new Job fields, ``name``/``postfix`` reports,
children kept bounded, ``leave=false``, ``?parent=`` and a parent's stream. Over real HTTP
against a real Jupyter server."""

from __future__ import annotations

from typing import Any

import httpx

from jupyter_progress.contract import MAX_FINISHED_CHILDREN, MAX_NESTING_DEPTH
from tests.helpers.sse_reader import StreamReader

from helpers.job_helpers import create


async def complete(api: httpx.AsyncClient, job_id: str, **body: Any) -> dict[str, Any]:
    response = await api.post(f"jobs/{job_id}/progress", json={"status": "completed", **body})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_job_has_the_new_fields_with_their_defaults(api: httpx.AsyncClient) -> None:
    job = await create(api, name="plain")
    assert job["parent_id"] is None
    assert (job["unit"], job["unit_scale"], job["postfix"], job["leave"]) == ("it", False, "", True)


async def test_unit_scale_leave_and_parent_are_kept(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="epochs")
    child = await create(
        api, name="batches", parent_id=parent["job_id"], unit="B", unit_scale=True, leave=False
    )
    fetched = (await api.get(f"jobs/{child['job_id']}")).json()
    assert fetched["parent_id"] == parent["job_id"]
    assert (fetched["unit"], fetched["unit_scale"], fetched["leave"]) == ("B", True, False)


async def test_bad_nesting_fields_are_400_and_create_nothing(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="p")
    bad_bodies = [
        {"parent_id": "0" * 32},  # no such job
        {"parent_id": "not-an-id"},
        {"parent_id": 5},
        {"unit": ""},
        {"unit": "x" * 500},
        {"unit": 3},
        {"unit_scale": "yes"},
        {"leave": 1},
        {"job_id": "a" * 32, "parent_id": "a" * 32},
    ]
    for body in bad_bodies:
        response = await api.post("jobs", json={"kind": "reported", "name": "bad", **body})
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"]
    children = (await api.get("jobs", params={"parent": parent["job_id"]})).json()["jobs"]
    assert children == []
    assert [job["name"] for job in (await api.get("jobs")).json()["jobs"]] == ["p"]


async def test_reports_change_name_and_postfix_and_each_change_is_an_event(
    api: httpx.AsyncClient,
) -> None:
    job = await create(api, name="epoch 1", total=10)
    url = f"jobs/{job['job_id']}/progress"
    async with StreamReader(api, params={"job": job["job_id"]}) as reader:
        await reader.next()  # the snapshot
        response = await api.post(url, json={"postfix": "loss=0.31"})
        assert response.json()["postfix"] == "loss=0.31"
        event = await reader.next()
        assert event.data["postfix"] == "loss=0.31"
        response = await api.post(url, json={"name": "epoch 2"})
        assert response.json()["name"] == "epoch 2"
        assert (await reader.next()).data["name"] == "epoch 2"
    for body in ({"postfix": 3}, {"postfix": "x" * 5000}, {"name": ["a"]}):
        assert (await api.post(url, json=body)).status_code == 400
    assert (await api.get(f"jobs/{job['job_id']}")).json()["name"] == "epoch 2"


async def test_jobs_list_is_top_level_and_parent_lists_children(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    first = await create(api, name="inner 1", parent_id=parent["job_id"])
    second = await create(api, name="inner 2", parent_id=parent["job_id"])
    grandchild = await create(api, name="innermost", parent_id=first["job_id"])
    top = (await api.get("jobs")).json()
    assert [job["job_id"] for job in top["jobs"]] == [parent["job_id"]]
    children = (await api.get("jobs", params={"parent": parent["job_id"]})).json()["jobs"]
    assert [job["job_id"] for job in children] == [second["job_id"], first["job_id"]]
    nested = (await api.get("jobs", params={"parent": first["job_id"]})).json()["jobs"]
    assert [job["job_id"] for job in nested] == [grandchild["job_id"]]
    assert (await api.get("jobs", params={"parent": "nope"})).status_code == 400


async def test_a_leave_false_child_is_removed_once_completed(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    gone = await create(api, name="inner", parent_id=parent["job_id"], leave=False, total=2)
    failed = await create(api, name="inner failing", parent_id=parent["job_id"], leave=False)
    async with StreamReader(api, params={"job": parent["job_id"]}) as reader:
        await reader.until(lambda e: e.data.get("job_id") == failed["job_id"])  # snapshot
        await complete(api, gone["job_id"], success=2)
        seen = await reader.until(lambda e: e.type == "job_removed")
        assert seen[-1].data == {"job_id": gone["job_id"]}
        assert seen[0].data["status"] == "completed"  # the final state first, then removal
    assert (await api.get(f"jobs/{gone['job_id']}")).status_code == 404
    await api.post(f"jobs/{failed['job_id']}/progress", json={"status": "failed"})
    assert (await api.get(f"jobs/{failed['job_id']}")).json()["status"] == "failed"  # kept


async def test_finished_children_are_kept_up_to_the_newest_ones(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    extra = 3
    ids = []
    async with StreamReader(api, params={"job": parent["job_id"]}) as reader:
        for number in range(MAX_FINISHED_CHILDREN + extra):
            child = await create(api, name=f"inner {number}", parent_id=parent["job_id"])
            await complete(api, child["job_id"])
            ids.append(child["job_id"])
        removed = []
        while len(removed) < extra:
            event = await reader.next()
            if event.type == "job_removed":
                removed.append(event.data["job_id"])
    assert removed == ids[:extra]
    children = (await api.get("jobs", params={"parent": parent["job_id"]})).json()["jobs"]
    assert [job["job_id"] for job in children] == ids[extra:][::-1]
    running = await create(api, name="still running", parent_id=parent["job_id"])
    children = (await api.get("jobs", params={"parent": parent["job_id"]})).json()["jobs"]
    assert len(children) == MAX_FINISHED_CHILDREN + 1  # running children are not counted
    assert children[0]["job_id"] == running["job_id"]


async def test_a_parent_stream_gets_children_and_grandchildren(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    other = await create(api, name="unrelated")
    old_child = await create(api, name="done before", parent_id=parent["job_id"])
    await complete(api, old_child["job_id"])
    async with StreamReader(api, params={"job": parent["job_id"]}) as reader:
        snapshot = await reader.until(lambda e: e.data.get("job_id") == old_child["job_id"])
        assert {e.data["job_id"] for e in snapshot} == {parent["job_id"], old_child["job_id"]}
        child = await create(api, name="inner", parent_id=parent["job_id"])
        grandchild = await create(api, name="innermost", parent_id=child["job_id"])
        await api.post(f"jobs/{other['job_id']}/progress", json={"success": 1})
        await complete(api, grandchild["job_id"])
        seen = await reader.until(
            lambda e: (
                e.data.get("job_id") == grandchild["job_id"] and e.data.get("status") == "completed"
            )
        )
        assert {e.data["job_id"] for e in seen} == {child["job_id"], grandchild["job_id"]}
        assert (await api.delete(f"jobs/{old_child['job_id']}")).status_code == 204
        removed = await reader.until(lambda e: e.type == "job_removed")
        assert removed[-1].data == {"job_id": old_child["job_id"]}


async def test_deleting_a_parent_forgets_its_finished_children(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    child = await create(api, name="inner", parent_id=parent["job_id"])
    await complete(api, child["job_id"])
    await complete(api, parent["job_id"])
    assert (await api.delete(f"jobs/{parent['job_id']}")).status_code == 204
    assert (await api.get(f"jobs/{child['job_id']}")).status_code == 404


async def test_nesting_deeper_than_the_limit_is_400(api: httpx.AsyncClient) -> None:
    parent_id = None
    for level in range(MAX_NESTING_DEPTH + 1):
        job = await create(api, name=f"level {level}", parent_id=parent_id)
        parent_id = job["job_id"]
    response = await api.post("jobs", json={"name": "too deep", "parent_id": parent_id})
    assert response.status_code == 400
    assert "deep" in response.json()["message"]


async def test_a_parent_reader_resumes_with_its_childrens_events(api: httpx.AsyncClient) -> None:
    parent = await create(api, name="outer")
    async with StreamReader(api, params={"job": parent["job_id"]}) as reader:
        last_id = (await reader.next()).event_id
    child = await create(api, name="inner", parent_id=parent["job_id"])
    await complete(api, child["job_id"])
    resume = {"job": parent["job_id"], "last_event_id": str(last_id)}
    async with StreamReader(api, params=resume) as reader:
        seen = await reader.until(lambda e: e.data.get("status") == "completed")
    assert [e.data["job_id"] for e in seen] == [child["job_id"], child["job_id"]]
