// The jobs list's model: order, search, filters, and what is left to page from the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { compareJobs, JobHistory, JOB_FILTERS, matchesQuery } from "../src/history.js";

/** @returns {any} */
function job(n, status = "completed", overrides = {}) {
  return {
    job_id: String(n).padStart(32, "0"),
    name: `job ${n}`,
    status,
    created_at: `2026-11-28T10:${String(Math.floor(n / 60) % 60).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}Z`,
    progress: { processed: 1, total: 1, success: 1, errors: 0, percentage: 100 },
    ...overrides,
  };
}

const filter = (/** @type {string} */ value) => JOB_FILTERS.find(([v]) => v === value) ?? null;

test("running jobs first, then the newest first", () => {
  const jobs = [job(1), job(5, "processing"), job(3), job(2, "pending"), job(4, "failed")];
  assert.deepEqual(
    jobs.sort(compareJobs).map((j) => j.name),
    ["job 5", "job 2", "job 4", "job 3", "job 1"]
  );
});

test("search matches names case-insensitively; filters by status", () => {
  const q = (/** @type {string} */ text, value = "all") => ({ filter: filter(value), q: text });
  assert.equal(matchesQuery(job(1, "completed", { name: "Epoch 12" }), q("epoch")), true);
  assert.equal(matchesQuery(job(1, "completed", { name: "Epoch 12" }), q("  EPOCH 1 ")), true);
  assert.equal(matchesQuery(job(1), q("epoch")), false);
  assert.equal(matchesQuery(job(1, "failed"), q("", "failed")), true);
  assert.equal(matchesQuery(job(1, "pending"), q("", "running")), true);
  assert.equal(matchesQuery(job(1, "completed"), q("", "running")), false);
});

test("children are never rows", () => {
  const history = new JobHistory();
  assert.equal(history.upsert(job(1, "processing", { parent_id: "p".repeat(32) })), false);
  assert.equal(history.jobs.size, 0);
});

test("paging: the next request carries the cursor, the query and the server's statuses", () => {
  const history = new JobHistory();
  const query = { filter: filter("failed"), q: " epoch " };
  assert.deepEqual(history.nextRequest(query, 50), { limit: 50, q: "epoch", status: ["failed"] });
  assert.equal(history.mayHaveMore(query, true), true);
  history.addPage(query, { jobs: [job(9, "failed")], next: "c1" });
  assert.deepEqual(history.nextRequest(query, 50), {
    limit: 50,
    before: "c1",
    q: "epoch",
    status: ["failed"],
  });
  history.addPage(query, { jobs: [job(8, "failed")], next: null });
  assert.equal(history.mayHaveMore(query, true), false);
  assert.equal(history.everything, false, "a filtered query's end says nothing of the rest");
  const all = { filter: filter("all"), q: "" };
  assert.equal(history.mayHaveMore(all, true), true);
  history.addPage(all, { jobs: [], next: null });
  assert.equal(history.everything, true);
  assert.equal(history.mayHaveMore({ filter: filter("completed"), q: "x" }, true), false);
});

test("running jobs are all in the stream: no page to ask for while it is live", () => {
  const history = new JobHistory();
  const running = { filter: filter("running"), q: "" };
  assert.equal(history.mayHaveMore(running, true), false);
  assert.equal(history.mayHaveMore(running, false), true);
});

test("a page never overwrites the stream's newer state, nor revives a removed job", () => {
  const history = new JobHistory();
  const all = { filter: null, q: "" };
  history.upsert(job(1, "processing", { progress: { processed: 9 } }));
  history.addPage(all, { jobs: [job(1, "processing", { progress: { processed: 2 } }), job(2)], next: "c" }, (id) => id === job(2).job_id);
  assert.equal(history.jobs.get(job(1).job_id)?.progress.processed, 9);
  assert.equal(history.jobs.has(job(2).job_id), false);
  history.addPage(all, { jobs: [job(1, "completed")], next: "d" });
  assert.equal(history.jobs.get(job(1).job_id)?.status, "completed", "a page that saw it end wins");
});

test("deleting the finished jobs leaves the running ones and ends every paging", () => {
  const history = new JobHistory();
  history.upsert(job(1));
  history.upsert(job(2, "processing"));
  history.removeFinished();
  assert.deepEqual([...history.jobs.values()].map((j) => j.name), ["job 2"]);
  assert.equal(history.running, 1);
  assert.equal(history.mayHaveMore({ filter: null, q: "anything" }, true), false);
});
