// The client-side contract: each fact defined once (contract.js), used everywhere.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  FINAL_STATUSES,
  isFinal,
  LOG_PREFIX,
  placeholderJob,
  STREAM_DOWN_NOTICE,
} from "../src/contract.js";
import { FILTERS } from "../src/labextension/jobs.js";

const SRC = new URL("../src/", import.meta.url).pathname;

/** @param {string} dir @returns {string[]} */
function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith(".js")
        ? [join(dir, entry.name)]
        : []
  );
}

test("isFinal: the three final statuses, nothing else", () => {
  assert.deepEqual([...FINAL_STATUSES], ["completed", "failed", "cancelled"]);
  for (const status of FINAL_STATUSES) assert.equal(isFinal(/** @type {any} */ ({ status })), true);
  for (const status of ["pending", "processing", "", undefined]) {
    assert.equal(isFinal(/** @type {any} */ ({ status })), false, String(status));
  }
  assert.equal(isFinal(null), false);
  assert.equal(isFinal(undefined), false);
});

test("the placeholder job is pending, indeterminate, named after its id", () => {
  const job = placeholderJob("0123456789abcdef".repeat(2));
  assert.equal(job.name, "job 01234567");
  assert.equal(job.status, "pending");
  assert.equal(job.progress.total, null);
  assert.equal(isFinal(job), false);
});

test("the panel's filters follow the final statuses", () => {
  assert.deepEqual(
    FILTERS.map(([value]) => value),
    ["all", "running", ...FINAL_STATUSES]
  );
  assert.deepEqual(
    FILTERS.map(([, label]) => label),
    ["All", "Running", "Completed", "Failed", "Cancelled"]
  );
});

test("no other module spells out the final statuses, the log prefix or the notices", () => {
  const literals = [
    /"completed",\s*"failed"/,
    /"cancelled"/,
    new RegExp(LOG_PREFIX.replace(/[[\]-]/g, "\\$&")),
    /Live updates interrupted/,
    /name: `job \$\{/,
  ];
  const offenders = [];
  for (const path of sources(SRC)) {
    if (path.endsWith("contract.js")) continue;
    const text = readFileSync(path, "utf8");
    for (const pattern of literals) if (pattern.test(text)) offenders.push(`${path}: ${pattern}`);
  }
  assert.deepEqual(offenders, []);
  assert.match(STREAM_DOWN_NOTICE, /^Live updates interrupted/);
});
