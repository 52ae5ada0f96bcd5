// The compact job view, its child rows, the notebook log tail, and the paged jobs list
// (jsdom; the stream is the real client over a fake EventSource and fetch).
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { JSDOM } from "jsdom";

import { STREAM_DOWN_NOTICE } from "../src/contract.js";
import { createJobsPanel, createJobView, JOB_FILTERS } from "../src/render.js";
import { ProgressStream } from "../src/stream.js";

function dom() {
  const { window } = new JSDOM("<!doctype html><body></body>");
  return window.document;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** @returns {any} */
function job(n, overrides = {}) {
  const status = overrides.status ?? "completed";
  return {
    job_id: String(n).padStart(32, "0"),
    name: `job ${n}`,
    kind: "reported",
    status,
    progress: { processed: 5, total: 10, success: 5, errors: 0, percentage: 50 },
    created_at: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    started_at: null,
    finished_at: null,
    parent_id: null,
    unit: "it",
    unit_scale: false,
    postfix: "",
    leave: true,
    ...overrides,
  };
}

class FakeEventSource {
  /** @type {FakeEventSource[]} */
  static instances = [];
  constructor(url) {
    this.url = url;
    /** @type {Record<string, Function[]>} */
    this.listeners = {};
    FakeEventSource.instances.push(this);
  }
  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }
  emit(type, event = {}) {
    for (const listener of this.listeners[type] ?? []) listener(event);
  }
  send(data, type = "job_updated") {
    this.emit(type, { lastEventId: "1", data: JSON.stringify({ type, data }) });
  }
  close() {}
}

/**
 * A real stream client over fakes: frames run at once, `respond` answers fetches.
 * @param {(url: string, init: any) => any} [respond]
 */
function liveStream(respond = () => ({ jobs: [], next: null })) {
  /** @type {{url: string, method: string}[]} */
  const requests = [];
  const stream = new ProgressStream(
    { baseUrl: "/" },
    {
      EventSource: FakeEventSource,
      fetch: /** @type {any} */ (
        async (/** @type {string} */ url, /** @type {any} */ init) => {
          requests.push({ url, method: init?.method ?? "GET" });
          const body = respond(url, init);
          return { status: 200, ok: true, json: async () => body };
        }
      ),
      requestAnimationFrame: (cb) => setTimeout(cb, 0),
      cancelAnimationFrame: (h) => clearTimeout(h),
      snapshotGraceMs: 60_000,
      getCookie: () => null,
    }
  );
  return { stream, requests };
}

/** @param {ProgressStream} stream */
function sourceOf(stream) {
  return /** @type {FakeEventSource} */ (/** @type {any} */ (stream)._source);
}

afterEach(() => {
  FakeEventSource.instances = [];
});

// ----- the job view ---------------------------------------------------------------------

test("child bars rise as compact rows inside the parent, each with its own bar", async () => {
  const doc = dom();
  const { stream } = liveStream();
  const parent = job(1, { status: "processing", name: "epochs" });
  const view = createJobView(doc.body, { document: doc, stream });
  view.update(parent);
  const source = sourceOf(stream);
  source.emit("open");
  const inner = job(2, {
    status: "processing",
    name: "batches",
    parent_id: parent.job_id,
    leave: false,
    unit: "B",
    unit_scale: true,
    rate: 1234567,
    postfix: "loss=0.31",
    progress: { processed: 3_000_000, total: 10_000_000, success: 3_000_000, errors: 0, percentage: 30 },
  });
  source.send(inner);
  const kept = job(3, { status: "completed", name: "warmup", parent_id: parent.job_id });
  source.send(kept);
  await tick();
  await tick();
  const root = doc.querySelector(".jp-progress-widget");
  const rows = [...root.querySelectorAll(".jp-progress-child")];
  assert.deepEqual(rows.map((r) => r.dataset.jobId), [inner.job_id, kept.job_id], "running first");
  const bar = rows[0].querySelector("[role=progressbar]");
  assert.equal(bar.getAttribute("aria-valuenow"), "3000000");
  assert.equal(bar.getAttribute("aria-valuemax"), "10000000");
  assert.equal(rows[0].querySelector(".jp-progress-child-text").textContent, "3.00M/10.0M 30% · 1.23 MB/s · loss=0.31");
  assert.equal(root.querySelector("[role=progressbar]").closest(".jp-progress-child"), null, "the parent's bar comes first");
  // It moves, then completes: a leave=false row goes away (job_removed follows).
  source.send({ ...inner, progress: { ...inner.progress, processed: 6_000_000, percentage: 60 } });
  await tick();
  assert.equal(rows[0].querySelector("[role=progressbar]").getAttribute("aria-valuenow"), "6000000");
  source.send({ ...inner, status: "completed" });
  await tick();
  await tick();
  assert.deepEqual(
    [...root.querySelectorAll(".jp-progress-child")].map((r) => r.dataset.jobId),
    [kept.job_id]
  );
  source.send({ job_id: kept.job_id }, "job_removed");
  await tick();
  await tick();
  assert.equal(root.querySelectorAll(".jp-progress-child").length, 0);
  assert.equal(root.querySelector(".jp-progress-children").hidden, true);
  view.destroy();
  assert.equal(stream.subscriberCount, 0, "destroy unsubscribes the child rows");
});

test("many children: running first, the newest next, the rest counted", async () => {
  const doc = dom();
  const { stream } = liveStream();
  const parent = job(1, { status: "processing" });
  const view = createJobView(doc.body, { document: doc, stream });
  view.update(parent);
  const source = sourceOf(stream);
  for (let i = 0; i < 20; i++) source.send(job(100 + i, { parent_id: parent.job_id }));
  source.send(job(99, { parent_id: parent.job_id, status: "processing" }));
  await tick();
  await tick();
  const ids = [...doc.querySelectorAll(".jp-progress-child")].map((r) => r.dataset.jobId);
  assert.equal(ids.length, 8);
  assert.equal(ids[0], job(99).job_id);
  assert.equal(ids[1], job(119).job_id);
  assert.equal(doc.querySelector(".jp-progress-children-more").textContent, "+ 13 more");
  view.destroy();
});

test("a notebook job shows its cell title and log tail as text in a collapsible block", () => {
  const doc = dom();
  const view = createJobView(doc.body, { document: doc });
  const hostile = "<img src=x onerror=alert(1)>";
  view.update(
    job(1, {
      kind: "notebook",
      status: "processing",
      details: { cell: 2, cell_count: 10, cell_title: "load data", log_tail: `line 1\n${hostile}\n` },
    })
  );
  assert.equal(doc.querySelector(".jp-progress-cell").textContent, "cell 3 of 10: load data");
  const log = doc.querySelector("details.jp-progress-log");
  assert.equal(log.hidden, false);
  assert.equal(log.open, false, "collapsed until asked");
  assert.equal(log.querySelector("pre.jp-progress-log-tail").textContent, `line 1\n${hostile}\n`);
  assert.equal(doc.querySelector("img"), null);
  view.update(job(1, { status: "processing" }));
  assert.equal(log.hidden, true);
  assert.equal(doc.querySelector(".jp-progress-cell").hidden, true);
  view.destroy();
});

test("unit, unit_scale and postfix show in the detail line", () => {
  const doc = dom();
  const view = createJobView(doc.body, { document: doc });
  view.update(
    job(1, {
      status: "processing",
      unit: "B",
      unit_scale: true,
      rate: 1234567,
      eta_seconds: 65,
      postfix: "loss=0.31, acc=0.9",
      progress: { processed: 12_345_678, total: 100_000_000, success: 12_345_678, errors: 0, percentage: 12.3 },
    })
  );
  assert.equal(doc.querySelector(".jp-progress-counts").textContent, "12.3 MB / 100 MB (12.3%)");
  assert.equal(doc.querySelector(".jp-progress-brief").textContent, "12.3M/100M");
  assert.equal(doc.querySelector(".jp-progress-rate").textContent, "1.23 MB/s");
  assert.equal(doc.querySelector(".jp-progress-eta").textContent, "ETA 1m 05s");
  assert.equal(doc.querySelector(".jp-progress-postfix").textContent, "loss=0.31, acc=0.9");
  view.destroy();
});

test("an expandable row builds its details only when expanded; Cancel shows without it", () => {
  const doc = dom();
  const expanded = [];
  const view = createJobView(doc.body, {
    document: doc,
    expandable: true,
    onCancel: () => {},
    onExpand: (open) => expanded.push(open),
  });
  view.update(job(1, { status: "processing", error_samples: [{ item: "x", error: "E" }] }));
  const root = doc.querySelector(".jp-progress-widget");
  assert.equal(root.querySelector(".jp-progress-body"), null);
  assert.equal(root.querySelector(".jp-progress-cancel").hidden, false);
  assert.equal(root.querySelector("[role=progressbar]").getAttribute("aria-valuenow"), "5");
  const toggle = root.querySelector("button.jp-progress-toggle");
  assert.equal(toggle.getAttribute("aria-expanded"), "false");
  assert.equal(toggle.getAttribute("aria-label"), "Details of job 1");
  toggle.click();
  assert.equal(toggle.getAttribute("aria-expanded"), "true");
  const body = root.querySelector(".jp-progress-body");
  assert.equal(toggle.getAttribute("aria-controls"), body.id);
  assert.equal(root.querySelector(".jp-progress-errors li").textContent, "xE");
  root.querySelector(".jp-progress-name").click();
  assert.equal(body.hidden, true);
  assert.deepEqual(expanded, [true, false]);
  view.destroy();
});

// ----- the jobs list --------------------------------------------------------------------

test("the list renders a page of rows, running first, and never a child as a row", async () => {
  const doc = dom();
  const { stream, requests } = liveStream();
  const panel = createJobsPanel(doc.body, { document: doc, stream, pageSize: 20 });
  const source = sourceOf(stream);
  source.emit("open");
  for (let i = 1; i <= 45; i++) source.send(job(i));
  source.send(job(2, { status: "processing" }));
  source.send(job(99, { status: "processing", parent_id: job(2).job_id }));
  await tick();
  await tick();
  const ids = () =>
    [...doc.querySelectorAll(".jp-progress-jobs-row")].map((r) => r.dataset.jobId);
  assert.equal(ids().length, 20, "one page of rows built");
  assert.equal(ids()[0], job(2).job_id, "running first");
  assert.equal(ids()[1], job(45).job_id, "then the newest");
  assert.ok(!ids().includes(job(99).job_id), "children are not rows");
  assert.equal(doc.querySelector(".jp-progress-jobs-panel").dataset.running, "1");
  assert.equal(doc.querySelector(".jp-progress-jobs-count").textContent, "1 running · 44+ finished");
  const more = doc.querySelector("button.jp-progress-jobs-more");
  assert.equal(more.hidden, false);
  assert.equal(more.textContent, "Show more");
  await panel.loadMore();
  assert.equal(ids().length, 40);
  assert.equal(requests.length, 0, "known rows first: no request");
  // Rows update live in place.
  source.send(job(2, { status: "processing", progress: { processed: 9, total: 10, success: 9, errors: 0, percentage: 90 } }));
  await tick();
  const bar = doc.querySelector(`.jp-progress-widget[data-job-id='${job(2).job_id}'] [role=progressbar]`);
  assert.equal(bar.getAttribute("aria-valuenow"), "9");
  panel.destroy();
});

test("past the known jobs, scrolling asks the server for the next page, until none is left", async () => {
  const doc = dom();
  const pages = {
    "": { jobs: [job(10), job(9), job(8)], next: "c1" },
    c1: { jobs: [job(7), job(6)], next: null },
  };
  const { stream, requests } = liveStream((url) => {
    const before = new URL(url, "http://x").searchParams.get("before") ?? "";
    return pages[/** @type {"" | "c1"} */ (before)];
  });
  const panel = createJobsPanel(doc.body, { document: doc, stream, pageSize: 3 });
  const source = sourceOf(stream);
  source.emit("open");
  source.send(job(11));
  source.send(job(10));
  await tick();
  assert.equal(requests.length, 0, "nothing asked at open");
  await panel.loadMore();
  assert.equal(
    requests[0].url,
    "/jupyter-progress/api/jobs?limit=5",
    "the first page spans the two known jobs and a page more"
  );
  await panel.loadMore();
  assert.equal(requests[1].url, "/jupyter-progress/api/jobs?limit=3&before=c1");
  const names = [...doc.querySelectorAll(".jp-progress-jobs-row .jp-progress-name")].map((n) => n.textContent);
  assert.deepEqual(names, ["job 11", "job 10", "job 9", "job 8", "job 7", "job 6"]);
  assert.equal(doc.querySelector("button.jp-progress-jobs-more").hidden, true);
  assert.equal(doc.querySelector(".jp-progress-jobs-count").textContent, "0 running · 6 finished");
  await panel.loadMore();
  assert.equal(requests.length, 2, "no more requests once the pages ended");
  panel.destroy();
});

test("search filters the loaded rows and asks the server for the rest", async () => {
  const doc = dom();
  const old = job(3, { name: "Nightly report 2026-10-01" });
  const { stream, requests } = liveStream(() => ({ jobs: [old], next: null }));
  const panel = createJobsPanel(doc.body, {
    document: doc,
    stream,
    search: true,
    filters: JOB_FILTERS,
  });
  const source = sourceOf(stream);
  source.emit("open");
  source.send(job(50, { name: "nightly report 2026-11-28" }));
  source.send(job(51, { name: "convert" }));
  await tick();
  const input = doc.querySelector("input.jp-progress-jobs-search");
  assert.equal(input.getAttribute("aria-label"), "Search jobs by name");
  await panel.setSearch("NIGHTLY");
  const names = () =>
    [...doc.querySelectorAll(".jp-progress-jobs-row .jp-progress-name")].map((n) => n.textContent);
  assert.deepEqual(names(), ["nightly report 2026-11-28", "Nightly report 2026-10-01"]);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].url, "/jupyter-progress/api/jobs?limit=51&q=NIGHTLY");
  await panel.setSearch("");
  assert.deepEqual(names().length, 3);
  // The running filter needs no request: the stream holds every running job.
  panel.setFilter("running");
  await tick();
  assert.equal(requests.length, 1);
  assert.equal(doc.querySelector(".jp-progress-jobs-empty").textContent, "No job matches.");
  panel.setFilter("failed");
  await tick();
  await tick();
  assert.equal(requests.length, 2);
  assert.equal(requests[1].url, "/jupyter-progress/api/jobs?limit=50&status=failed");
  panel.destroy();
});

test("Delete finished asks first, then sends one request; running rows stay", async () => {
  const doc = dom();
  const { stream, requests } = liveStream((url, init) =>
    init?.method === "DELETE" ? { deleted: 3000 } : { jobs: [], next: null }
  );
  const answers = [false, true];
  const questions = [];
  const panel = createJobsPanel(doc.body, {
    document: doc,
    stream,
    deleteFinished: true,
    confirm: async (text) => {
      questions.push(text);
      return /** @type {boolean} */ (answers.shift());
    },
  });
  const source = sourceOf(stream);
  source.emit("open");
  for (let i = 1; i <= 5; i++) source.send(job(i));
  source.send(job(6, { status: "processing" }));
  await tick();
  const clear = doc.querySelector("button.jp-progress-jobs-clear");
  assert.equal(clear.disabled, false);
  await panel.deleteFinished();
  assert.equal(requests.length, 0, "declined: nothing sent");
  await panel.deleteFinished();
  assert.equal(questions.length, 2);
  assert.deepEqual(requests, [{ url: "/jupyter-progress/api/jobs?status=finished", method: "DELETE" }]);
  await tick();
  assert.deepEqual(
    [...doc.querySelectorAll(".jp-progress-jobs-row")].map((r) => r.dataset.jobId),
    [job(6).job_id]
  );
  assert.match(doc.querySelector(".jp-progress-jobs-panel > .jp-progress-notice").textContent, /Deleted 3,000/);
  assert.equal(doc.querySelector("button.jp-progress-jobs-more").hidden, true, "nothing older is left");
  panel.destroy();
});

test("without a confirm option, Delete finished asks inline", async () => {
  const doc = dom();
  const { stream, requests } = liveStream(() => ({ deleted: 1 }));
  const panel = createJobsPanel(doc.body, { document: doc, stream, deleteFinished: true });
  sourceOf(stream).send(job(1));
  await tick();
  doc.querySelector("button.jp-progress-jobs-clear").click();
  const bar = doc.querySelector(".jp-progress-jobs-confirm");
  assert.equal(bar.hidden, false);
  assert.equal(bar.getAttribute("role"), "alertdialog");
  bar.querySelector("button.jp-progress-jobs-confirm-no").click();
  await tick();
  assert.equal(requests.length, 0);
  doc.querySelector("button.jp-progress-jobs-clear").click();
  doc.querySelector("button.jp-progress-jobs-confirm-yes").click();
  await tick();
  await tick();
  assert.equal(requests.length, 1);
  assert.equal(requests[0].method, "DELETE");
  panel.destroy();
});

test("expanding a finished row asks once for its children; arrow keys move between rows", async () => {
  const doc = dom();
  const parent = job(5);
  const { stream, requests } = liveStream(() => ({
    jobs: [job(6, { parent_id: parent.job_id, name: "inner" })],
    next: null,
  }));
  const panel = createJobsPanel(doc.body, { document: doc, stream });
  const source = sourceOf(stream);
  source.send(parent);
  source.send(job(4));
  await tick();
  const toggles = [...doc.querySelectorAll("button.jp-progress-toggle")];
  toggles[0].click();
  await tick();
  await tick();
  await tick();
  assert.deepEqual(requests.map((r) => r.url), [`/jupyter-progress/api/jobs?limit=100&parent=${parent.job_id}`]);
  const row = doc.querySelector(`.jp-progress-jobs-row[data-job-id='${parent.job_id}']`);
  assert.equal(row.querySelector(".jp-progress-child .jp-progress-child-name").textContent, "inner");
  toggles[0].click();
  toggles[0].click();
  assert.equal(requests.length, 1, "once");
  toggles[0].focus();
  toggles[0].dispatchEvent(new doc.defaultView.KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
  assert.equal(doc.activeElement, toggles[1]);
  panel.destroy();
});

test("the list shows the stream's outage, and row actions act on the job", async () => {
  const doc = dom();
  const { stream } = liveStream();
  const opened = [];
  const panel = createJobsPanel(doc.body, {
    document: doc,
    stream,
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
  const source = sourceOf(stream);
  source.send(job(1, { message: "out.ipynb" }));
  await tick();
  assert.equal(doc.querySelector(".jp-test-open"), null, "built on expansion");
  doc.querySelector("button.jp-progress-toggle").click();
  const button = doc.querySelector(".jp-progress-jobs-actions button.jp-test-open");
  assert.equal(button.dataset.path, "out.ipynb");
  button.click();
  assert.deepEqual(opened, ["out.ipynb"]);
  source.emit("error");
  const notice = doc.querySelector(".jp-progress-jobs-panel > .jp-progress-notice");
  assert.equal(notice.textContent, STREAM_DOWN_NOTICE);
  panel.destroy();
  stream.close();
});

test("reveal brings a hidden job's row into view, expanded and outlined", async () => {
  const doc = dom();
  const { stream } = liveStream();
  const panel = createJobsPanel(doc.body, { document: doc, stream, search: true, filters: JOB_FILTERS, pageSize: 2 });
  const source = sourceOf(stream);
  for (let i = 1; i <= 5; i++) source.send(job(i, { status: "failed", error_samples: [{ item: "x", error: "E" }] }));
  await tick();
  panel.setFilter("running");
  await tick();
  assert.equal(panel.reveal("nope"), false);
  assert.equal(panel.reveal(job(1).job_id), true, "the oldest, past the first page and the filter");
  assert.equal(panel.filter, "all");
  const row = doc.querySelector(`.jp-progress-jobs-row[data-job-id='${job(1).job_id}']`);
  assert.ok(row.classList.contains("jp-mod-highlighted"));
  assert.equal(row.querySelector("button.jp-progress-toggle").getAttribute("aria-expanded"), "true");
  assert.equal(row.querySelector("details.jp-progress-errors").open, true);
  panel.destroy();
});

test("reveal of a job the list does not hold yet happens when it arrives", async () => {
  const doc = dom();
  const { stream } = liveStream();
  const panel = createJobsPanel(doc.body, { document: doc, stream });
  assert.equal(panel.reveal(job(7).job_id), false);
  sourceOf(stream).send(job(7, { status: "failed" }));
  await tick();
  await tick();
  const row = doc.querySelector(`.jp-progress-jobs-row[data-job-id='${job(7).job_id}']`);
  assert.ok(row.classList.contains("jp-mod-highlighted"));
  panel.destroy();
});
