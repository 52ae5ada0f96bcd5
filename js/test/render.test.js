// DOM rendering of jobs (jsdom): hooks, text-only content, indeterminate bars, ordering.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JSDOM } from "jsdom";

import { createJobsPanel, createJobView, formatDuration, formatRate } from "../src/render.js";
import { STREAM_DOWN_NOTICE } from "../src/contract.js";
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
  assert.equal(root.querySelector(".jp-progress-rate").textContent, "12.5 items/s");
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

test("the jobs panel lists jobs newest first and drops removed ones", () => {
  const doc = dom();
  const panel = createJobsPanel(doc.body, { document: doc });
  const ids = ["1", "2", "3"].map((n) => n.repeat(32));
  panel.update(job({ job_id: ids[1], created_at: "2026-11-28T10:00:02.000Z" }));
  panel.update(job({ job_id: ids[0], created_at: "2026-11-28T10:00:01.000Z", status: "failed" }));
  panel.update(job({ job_id: ids[2], created_at: "2026-11-28T10:00:03.000Z" }));
  const order = () =>
    [...doc.querySelectorAll(".jp-progress-jobs-panel .jp-progress-widget")].map(
      (e) => e.dataset.jobId
    );
  assert.deepEqual(order(), [ids[2], ids[1], ids[0]]);
  assert.equal(doc.querySelector(".jp-progress-jobs-panel").dataset.running, "2");
  panel.update(null, ids[1]);
  assert.deepEqual(order(), [ids[2], ids[0]]);
  panel.update(job({ job_id: ids[2], created_at: "2026-11-28T10:00:03.000Z", status: "completed" }));
  assert.deepEqual(order(), [ids[2], ids[0]]);
  assert.equal(doc.querySelector(".jp-progress-jobs-panel").dataset.running, "0");
  panel.destroy();
  assert.equal(doc.querySelector(".jp-progress-jobs-panel"), null);
});

test("the jobs list counts running jobs and shows an empty state", () => {
  const doc = dom();
  const panel = createJobsPanel(doc.body, { document: doc });
  const empty = doc.querySelector(".jp-progress-jobs-empty");
  assert.equal(empty.hidden, false);
  assert.equal(empty.textContent, "No jobs yet.");
  assert.equal(doc.querySelector(".jp-progress-jobs-toolbar"), null, "no options, no toolbar");
  panel.update(job());
  panel.update(job({ job_id: "b".repeat(32), status: "completed" }));
  assert.equal(empty.hidden, true);
  assert.equal(doc.querySelector(".jp-progress-jobs-count").textContent, "1 running · 2 total");
  const row = doc.querySelector(".jp-progress-jobs-row");
  assert.equal(row.querySelector(".jp-progress-widget").dataset.jobId, row.dataset.jobId);
  assert.equal(doc.querySelector(".jp-progress-jobs-actions"), null, "no row actions");
  panel.destroy();
});

test("a status filter hides the rows that do not match, and says so when none do", () => {
  const doc = dom();
  const filters = /** @type {any} */ ([
    ["all", "All", () => true],
    ["failed", "Failed", (/** @type {any} */ j) => j.status === "failed"],
  ]);
  const panel = createJobsPanel(doc.body, { document: doc, filters });
  const root = doc.querySelector(".jp-progress-jobs-panel");
  const select = doc.querySelector("select.jp-progress-jobs-filter");
  assert.deepEqual([...select.options].map((o) => o.textContent), ["All", "Failed"]);
  assert.equal(root.dataset.filter, "all");
  panel.update(job());
  const visible = () =>
    [...doc.querySelectorAll(".jp-progress-jobs-row")].filter((r) => !r.hidden).length;
  assert.equal(visible(), 1);
  select.value = "failed";
  select.dispatchEvent(new doc.defaultView.Event("change"));
  assert.equal(panel.filter, "failed");
  assert.equal(root.dataset.filter, "failed");
  assert.equal(visible(), 0);
  const empty = doc.querySelector(".jp-progress-jobs-empty");
  assert.equal(empty.textContent, "No job matches this filter.");
  assert.equal(empty.hidden, false);
  panel.update(job({ status: "failed" }));
  assert.equal(visible(), 1);
  panel.setFilter("no such filter");
  assert.equal(panel.filter, "all");
  panel.destroy();
});

test("row actions follow each job's latest state and act on it", () => {
  const doc = dom();
  const opened = [];
  const panel = createJobsPanel(doc.body, {
    document: doc,
    rowActions: [
      {
        className: "jp-test-open",
        label: "Open",
        update: (button, j) => {
          button.hidden = !j.message;
          button.dataset.path = j.message ?? "";
        },
        run: (j) => opened.push(j.message),
      },
    ],
  });
  panel.update(job({ message: "" }));
  const button = doc.querySelector(".jp-progress-jobs-actions button.jp-test-open");
  assert.equal(button.hidden, true);
  panel.update(job({ message: "out.ipynb" }));
  assert.equal(button.hidden, false);
  assert.equal(button.dataset.path, "out.ipynb");
  button.click();
  assert.deepEqual(opened, ["out.ipynb"]);
  panel.destroy();
});

test("delete finished forgets every finished job listed, and reports failures", async () => {
  const doc = dom();
  const removed = [];
  const panel = createJobsPanel(doc.body, {
    document: doc,
    deleteFinished: true,
    onRemove: async (id) => {
      removed.push(id);
      if (id.startsWith("c")) throw new Error("409");
    },
  });
  const clear = doc.querySelector("button.jp-progress-jobs-clear");
  panel.update(job());
  assert.equal(clear.disabled, true, "nothing finished yet");
  panel.update(job({ job_id: "b".repeat(32), status: "completed" }));
  panel.update(job({ job_id: "c".repeat(32), status: "failed" }));
  assert.equal(clear.disabled, false);
  const warn = console.warn;
  console.warn = () => {};
  try {
    await panel.deleteFinished();
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(removed.sort(), ["b".repeat(32), "c".repeat(32)]);
  const notice = doc.querySelector(".jp-progress-jobs-panel > .jp-progress-notice");
  assert.equal(notice.textContent, "Could not delete 1 job(s).");
  panel.destroy();
});

test("with a stream, the list follows every job and shows the outage notice", () => {
  const doc = dom();
  /** @type {Set<Function>} */
  const all = new Set();
  /** @type {Set<Function>} */
  const states = new Set();
  const cancelled = [];
  const stream = /** @type {any} */ ({
    state: "live",
    subscribeAll: (/** @type {Function} */ cb) => (all.add(cb), () => all.delete(cb)),
    onState: (/** @type {Function} */ cb) => (states.add(cb), () => states.delete(cb)),
    cancel: async (/** @type {string} */ id) => cancelled.push(id),
    remove: async () => {},
  });
  const panel = createJobsPanel(doc.body, { document: doc, stream });
  for (const cb of all) cb(job(), job().job_id);
  assert.equal(panel.size, 1);
  doc.querySelector(".jp-progress-cancel").click();
  assert.deepEqual(cancelled, [job().job_id]);
  const notice = doc.querySelector(".jp-progress-jobs-panel > .jp-progress-notice");
  for (const cb of states) cb("down");
  assert.equal(notice.textContent, STREAM_DOWN_NOTICE);
  for (const cb of states) cb("live");
  assert.equal(notice.hidden, true);
  for (const cb of all) cb(null, job().job_id);
  assert.equal(panel.size, 0);
  panel.destroy();
  assert.equal(all.size + states.size, 0, "destroy unsubscribes");
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

test("formatting helpers", () => {
  assert.equal(formatDuration(5), "5s");
  assert.equal(formatDuration(65), "1m 05s");
  assert.equal(formatDuration(3700), "1h 01m");
  assert.equal(formatRate(0.5), "30.0 items/min");
  assert.equal(formatRate(1234), "1,234 items/s");
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
