// The lab extension's DOM-free logic: output data, "unknown to the server", filters.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  countRunning,
  executedCopyPath,
  FILTERS,
  parseOutputData,
} from "../src/labextension/jobs.js";

const ID = "a".repeat(32);

/** @returns {any} */
function job(overrides = {}) {
  return {
    job_id: ID,
    name: "convert",
    kind: "reported",
    status: "processing",
    progress: { processed: 5, total: 10, success: 5, errors: 0, percentage: 50 },
    ...overrides,
  };
}

test("parseOutputData reads the job id and a saved job of the same id", () => {
  assert.deepEqual(parseOutputData({ job_id: ID, job: job() }), { jobId: ID, saved: job() });
  assert.deepEqual(parseOutputData({ job_id: ID, job: null }), { jobId: ID, saved: null });
  assert.deepEqual(parseOutputData({ job_id: ID }), { jobId: ID, saved: null });
});

test("parseOutputData ignores malformed data", () => {
  for (const data of [null, "x", 3, {}, { job_id: "" }, { job_id: 5 }, []]) {
    assert.equal(parseOutputData(data), null, JSON.stringify(data));
  }
  // A saved job of another id, or without a status, is not trusted.
  assert.equal(parseOutputData({ job_id: ID, job: job({ job_id: "b" }) })?.saved, null);
  assert.equal(parseOutputData({ job_id: ID, job: { job_id: ID } })?.saved, null);
});

test("filters: running means not final", () => {
  const byValue = Object.fromEntries(FILTERS.map(([value, , test]) => [value, test]));
  assert.equal(byValue.running(job({ status: "pending" })), true);
  assert.equal(byValue.running(job({ status: "completed" })), false);
  assert.equal(byValue.failed(job({ status: "failed" })), true);
  assert.equal(byValue.all(job({ status: "cancelled" })), true);
  assert.equal(
    countRunning([job(), job({ status: "pending" }), job({ status: "cancelled" })]),
    2
  );
  assert.equal(countRunning([job(), job({ parent_id: "b".repeat(32) })]), 1, "children are not counted");
});

test("executedCopyPath: a notebook job's output_path only", () => {
  const notebook = job({ kind: "notebook", details: { path: "a.ipynb", output_path: "b.ipynb" } });
  assert.equal(executedCopyPath(notebook), "b.ipynb");
  assert.equal(executedCopyPath(job({ details: { output_path: "b.ipynb" } })), null);
  assert.equal(executedCopyPath(job({ kind: "notebook", details: {} })), null);
  assert.equal(executedCopyPath(job({ kind: "notebook" })), null);
});
