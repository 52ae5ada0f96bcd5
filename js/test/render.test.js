// DOM rendering of jobs (jsdom): hooks, text-only content, indeterminate bars, ordering.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JSDOM } from "jsdom";

import { createJobView } from "../src/render.js";
import { pickJob } from "../src/widget.js";

function dom() {
  const { window } = new JSDOM("<!doctype html><body></body>");
  return window.document;
}

/** @returns {any} */
function job(overrides = {}) {
  return {
    job_id: "a".repeat(32),
    name: "convert",
    status: "processing",
    progress: { processed: 50, total: 100, success: 48, errors: 2, percentage: 50 },
    message: "b.csv",
    error_samples: [{ item: "x.csv", error: "ValueError: bad" }],
    rate: 12.5,
    eta_seconds: 4,
    created_at: "2026-11-28T10:00:00.000Z",
    started_at: "2026-11-28T10:00:00.000Z",
    finished_at: null,
    ...overrides,
  };
}

test("a job view carries the contract's DOM hooks", () => {
  const doc = dom();
  const view = createJobView(doc.body, { onCancel: () => {}, document: doc });
  view.update(job());
  const root = doc.querySelector(".jp-progress-widget");
  assert.equal(root.dataset.jobId, "a".repeat(32));
  assert.equal(root.dataset.status, "processing");
  const bar = root.querySelector("[role=progressbar]");
  assert.equal(bar.getAttribute("aria-valuenow"), "50");
  assert.equal(bar.getAttribute("aria-valuemax"), "100");
  assert.equal(root.querySelector(".jp-progress-counts").textContent, "50 / 100 (50.0%)");
  assert.equal(root.querySelector(".jp-progress-outcome").textContent, "48 ok · 2 errors");
  assert.equal(root.querySelector(".jp-progress-rate").textContent, "12.5 it/s");
  assert.equal(root.querySelector(".jp-progress-brief").textContent, "50/100");
  assert.equal(root.querySelector(".jp-progress-eta").textContent, "ETA 4s");
  assert.match(root.querySelector(".jp-progress-elapsed").textContent, /^elapsed /);
  assert.equal(root.querySelector(".jp-progress-badge").textContent, "processing");
  assert.equal(root.querySelector(".jp-progress-cancel").hidden, false);
  assert.equal(root.querySelector(".jp-progress-errors li").textContent, "x.csvValueError: bad");
  view.update(job({ status: "completed", progress: { ...job().progress, processed: 100 } }));
  assert.equal(root.querySelector(".jp-progress-cancel").hidden, true);
  assert.equal(root.querySelector(".jp-progress-eta").textContent, "");
  view.destroy();
  assert.equal(doc.querySelector(".jp-progress-widget"), null);
});

test("names, messages and errors are text, never markup", () => {
  const doc = dom();
  const view = createJobView(doc.body, { document: doc });
  const hostile = "<img src=x onerror=alert(1)>";
  view.update(
    job({ name: hostile, message: hostile, error_samples: [{ item: hostile, error: hostile }] })
  );
  assert.equal(doc.querySelector("img"), null);
  assert.equal(doc.querySelector(".jp-progress-name").textContent, hostile);
  assert.equal(doc.querySelector(".jp-progress-message").textContent, hostile);
  view.destroy();
});

test("without a total the bar is indeterminate and has no aria-valuemax", () => {
  const doc = dom();
  const view = createJobView(doc.body, { document: doc });
  view.update(job({ progress: { processed: 7, total: null, success: 7, errors: 0, percentage: null } }));
  const bar = doc.querySelector("[role=progressbar]");
  assert.equal(bar.hasAttribute("aria-valuemax"), false);
  assert.equal(bar.getAttribute("aria-valuenow"), "7");
  assert.ok(bar.classList.contains("jp-progress-indeterminate"));
  assert.equal(doc.querySelector(".jp-progress-counts").textContent, "7 items");
  view.destroy();
});

test("cancel calls back once and shows a failure as a notice", async () => {
  const doc = dom();
  const calls = [];
  const view = createJobView(doc.body, {
    document: doc,
    onCancel: async (id) => {
      calls.push(id);
      throw new Error("the job already completed");
    },
  });
  view.update(job());
  doc.querySelector(".jp-progress-cancel").click();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(calls, ["a".repeat(32)]);
  assert.match(doc.querySelector(".jp-progress-notice").textContent, /already completed/);
  view.destroy();
});

test("the widget shows the server's state unless the kernel's is further along", () => {
  const server = job();
  const kernelAhead = job({ progress: { ...job().progress, processed: 60 } });
  assert.equal(pickJob(server, null), server);
  assert.equal(pickJob(null, kernelAhead), kernelAhead);
  assert.equal(pickJob(server, kernelAhead), kernelAhead);
  const cancelled = job({ status: "cancelled" });
  assert.equal(pickJob(cancelled, kernelAhead), cancelled);
});
