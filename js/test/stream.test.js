// Unit tests of the shared stream client with a fake EventSource, fetch, frames and timers.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { getStream, pageConfig, ProgressStream, resetHub } from "../src/stream.js";

class FakeEventSource {
  /** @type {FakeEventSource[]} */
  static instances = [];
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.closed = false;
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
  open() {
    this.emit("open");
  }
  send(id, job, type = "job_updated") {
    const data = type === "job_updated" ? job : { job_id: job.job_id };
    this.emit(type, { lastEventId: String(id), data: JSON.stringify({ type, data }) });
  }
  fail() {
    this.emit("error");
  }
  close() {
    this.closed = true;
  }
}

function fakeEnv() {
  let now = 0;
  /** @type {{at: number, cb: Function, id: number}[]} */
  let timers = [];
  /** @type {Function[]} */
  let frames = [];
  let nextId = 1;
  /** @type {{url: string, init: any}[]} */
  const requests = [];
  /** @type {(url: string, init: any) => {status: number, body?: any}} */
  let respond = () => ({ status: 200, body: { jobs: [] } });
  const env = {
    EventSource: FakeEventSource,
    fetch: async (url, init) => {
      requests.push({ url, init });
      const { status, body } = respond(url, init);
      return { status, ok: status >= 200 && status < 300, json: async () => body };
    },
    requestAnimationFrame: (cb) => {
      frames.push(cb);
      return frames.length;
    },
    cancelAnimationFrame: () => {
      frames = [];
    },
    setTimeout: (cb, ms) => {
      const id = nextId++;
      timers.push({ at: now + ms, cb, id });
      return id;
    },
    clearTimeout: (id) => {
      timers = timers.filter((t) => t.id !== id);
    },
    getCookie: (name) => (name === "_xsrf" ? "xsrf-value" : null),
  };
  return {
    env,
    requests,
    setResponder(fn) {
      respond = fn;
    },
    /** Run one animation frame. */
    frame() {
      const pending = frames;
      frames = [];
      for (const cb of pending) cb();
    },
    get pendingFrames() {
      return frames.length;
    },
    /** Advance fake time, running due timers (and letting promises settle). */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > end) break;
        timers.shift();
        now = next.at;
        next.cb();
        for (let i = 0; i < 10; i++) await Promise.resolve();
      }
      now = end;
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
    get timerCount() {
      return timers.length;
    },
  };
}

/** @param {string} id @param {number} processed @param {string} [status] */
function job(id, processed, status = "processing") {
  return {
    job_id: id,
    name: `job ${id}`,
    status,
    created_at: `2026-11-29T00:00:0${id.length % 10}Z`,
    progress: { processed, total: 10, success: processed, errors: 0, percentage: processed * 10 },
  };
}

beforeEach(() => {
  FakeEventSource.instances = [];
  resetHub();
});
afterEach(() => resetHub());

test("getStream shares one stream per server URL and adds the token only when set", () => {
  const { env } = fakeEnv();
  const a = getStream({ baseUrl: "/base/", token: "" }, env);
  const b = getStream({ baseUrl: "/base", token: "" }, env);
  const c = getStream({ baseUrl: "/base/", token: "abc" }, env);
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.equal(a._url(), "/base/jupyter-progress/api/events");
  assert.equal(c._url(), "/base/jupyter-progress/api/events?token=abc");
});

test("pageConfig reads baseUrl and token from jupyter-config-data", () => {
  const doc = {
    getElementById: (id) =>
      id === "jupyter-config-data" ? { textContent: '{"baseUrl": "/u/x/", "token": ""}' } : null,
  };
  assert.deepEqual(pageConfig(/** @type {any} */ (doc)), { baseUrl: "/u/x/", token: "" });
  assert.equal(pageConfig(/** @type {any} */ ({ getElementById: () => null })), null);
  assert.equal(pageConfig(undefined), null);
});

test("many subscribers share one EventSource that closes when the last one leaves", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const unsubscribes = [];
  for (let i = 0; i < 20; i++) unsubscribes.push(stream.subscribeJob(`j${i}`, () => {}));
  unsubscribes.push(stream.subscribeAll(() => {}));
  assert.equal(FakeEventSource.instances.length, 1);
  const source = FakeEventSource.instances[0];
  for (const unsubscribe of unsubscribes.slice(1)) unsubscribe();
  assert.equal(source.closed, false);
  unsubscribes[0]();
  unsubscribes[0]();
  assert.equal(source.closed, true);
  assert.equal(stream.state, "closed");
  assert.equal(stream.subscriberCount, 0);
  assert.equal(fake.timerCount, 0);
});

test("updates are coalesced to one callback per job per frame", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  const all = [];
  stream.subscribeJob("a", (j) => seen.push(j.progress.processed));
  stream.subscribeAll((j, id) => all.push(id));
  const source = FakeEventSource.instances[0];
  source.open();
  for (let i = 1; i <= 5; i++) source.send(i, job("a", i));
  source.send(6, job("b", 1));
  assert.deepEqual(seen, []);
  assert.equal(fake.pendingFrames, 1);
  fake.frame();
  assert.deepEqual(seen, [5]);
  assert.deepEqual(all.sort(), ["a", "b"]);
  source.send(7, job("a", 6));
  fake.frame();
  assert.deepEqual(seen, [5, 6]);
  assert.equal(stream.lastEventId, "7");
});

test("a late subscriber gets the known state in the next frame", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  stream.subscribeJob("a", () => {});
  FakeEventSource.instances[0].send(1, job("a", 3));
  fake.frame();
  const seen = [];
  stream.subscribeJob("a", (j) => seen.push(j.progress.processed));
  fake.frame();
  assert.deepEqual(seen, [3]);
});

test("job_removed reaches subscribers as null", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  stream.subscribeAll((j, id) => seen.push([id, j && j.status]));
  const source = FakeEventSource.instances[0];
  source.send(1, job("a", 10, "completed"));
  fake.frame();
  source.send(2, job("a", 10), "job_removed");
  fake.frame();
  assert.deepEqual(seen, [
    ["a", "completed"],
    ["a", null],
  ]);
});

test("no request to the REST API while the stream is healthy", async () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  stream.subscribeJob("a", () => {});
  const source = FakeEventSource.instances[0];
  source.open();
  for (let i = 1; i < 100; i++) {
    source.send(i, job("a", i % 10));
    await fake.advance(100);
    fake.frame();
  }
  assert.equal(fake.requests.length, 0);
  assert.equal(FakeEventSource.instances.length, 1);
});

test("after an error: polls every 5 s, reconnects with the resume point, stops polling", async () => {
  const fake = fakeEnv();
  fake.setResponder((url) =>
    url.endsWith("/jobs/a") ? { status: 200, body: job("a", 7) } : { status: 500 }
  );
  const stream = new ProgressStream(
    { baseUrl: "/b/", token: "" },
    { ...fake.env, reconnectDelaysMs: [1000, 60000] }
  );
  const seen = [];
  const states = [];
  stream.onState((s) => states.push(s));
  stream.subscribeJob("a", (j) => seen.push(j.progress.processed));
  const first = FakeEventSource.instances[0];
  first.open();
  first.send(41, job("a", 4));
  fake.frame();
  first.fail();
  assert.equal(first.closed, true);
  assert.equal(stream.state, "down");
  await fake.advance(0);
  assert.equal(fake.requests.length, 1, "one poll at once");
  assert.equal(fake.requests[0].url, "/b/jupyter-progress/api/jobs/a");
  assert.equal(fake.requests[0].init.headers["X-XSRFToken"], "xsrf-value");
  fake.frame();
  assert.deepEqual(seen, [4, 7]);
  // The reconnect after 1 s fails too (a non-200: the fake never opens).
  await fake.advance(1000);
  const second = FakeEventSource.instances[1];
  assert.equal(second.url, "/b/jupyter-progress/api/events?last_event_id=41");
  second.fail();
  await fake.advance(3999);
  assert.equal(fake.requests.length, 1);
  await fake.advance(1);
  assert.equal(fake.requests.length, 2, "the next poll 5 s later");
  await fake.advance(10_000);
  assert.equal(fake.requests.length, 4);
  // The stream comes back: polling stops.
  await fake.advance(60_000);
  const third = FakeEventSource.instances.at(-1);
  assert.equal(FakeEventSource.instances.length, 3);
  third.open();
  const polls = fake.requests.length;
  await fake.advance(60_000);
  assert.equal(fake.requests.length, polls);
  assert.deepEqual(states, ["connecting", "live", "down", "live"]);
});

test("polling the all-jobs subscription asks for the running jobs, then the ones it missed", async () => {
  const fake = fakeEnv();
  fake.setResponder((url) =>
    url.includes("/jobs?")
      ? { status: 200, body: { jobs: [job("x", 2)], next: null } }
      : url.endsWith("/jobs/y")
        ? { status: 200, body: job("y", 10, "completed") }
        : { status: 404 }
  );
  const stream = new ProgressStream({ baseUrl: "/", token: "tok" }, fake.env);
  const seen = [];
  stream.subscribeAll((j, id) => seen.push([id, j?.status ?? null]));
  const source = FakeEventSource.instances[0];
  source.send(1, job("y", 3));
  source.send(2, job("old", 10, "completed"));
  source.fail();
  await fake.advance(0);
  assert.deepEqual(
    fake.requests.map((r) => r.url),
    ["/jupyter-progress/api/jobs?status=pending&status=processing&limit=1000", "/jupyter-progress/api/jobs/y"]
  );
  assert.equal(fake.requests[0].init.headers.Authorization, "token tok");
  fake.frame();
  assert.deepEqual(seen.sort(), [["old", "completed"], ["x", "processing"], ["y", "completed"]]);
  assert.ok(stream.jobs.has("old"), "a finished job missing from the running list stays");
});

test("a 404 while polling tells the subscriber the server does not know the job", async () => {
  const fake = fakeEnv();
  fake.setResponder(() => ({ status: 404, body: { message: "no such job" } }));
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  stream.subscribeJob("gone", (j, id) => seen.push([id, j]));
  FakeEventSource.instances[0].fail();
  await fake.advance(0);
  fake.frame();
  assert.deepEqual(seen, [["gone", null]]);
  await fake.advance(5000);
  assert.equal(fake.requests.length, 1, "an unknown job is not polled again");
});

test("final jobs are not polled", async () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  stream.subscribeJob("a", () => {});
  const source = FakeEventSource.instances[0];
  source.send(1, job("a", 10, "completed"));
  source.fail();
  await fake.advance(20_000);
  assert.equal(fake.requests.length, 0);
});

test("cancel posts with the XSRF header and stores the answer", async () => {
  const fake = fakeEnv();
  fake.setResponder((url, init) =>
    init.method === "POST" ? { status: 202, body: job("a", 3, "cancelled") } : { status: 500 }
  );
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  stream.subscribeJob("a", (j) => seen.push(j.status));
  const result = await stream.cancel("a");
  assert.equal(result.status, "cancelled");
  const request = fake.requests[0];
  assert.equal(request.url, "/jupyter-progress/api/jobs/a/cancel");
  assert.equal(request.init.method, "POST");
  assert.equal(request.init.headers["X-XSRFToken"], "xsrf-value");
  fake.frame();
  assert.deepEqual(seen, ["cancelled"]);
});

test("cancel of a finished job rejects with the server's message", async () => {
  const fake = fakeEnv();
  fake.setResponder(() => ({ status: 409, body: { message: "the job already completed" } }));
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  await assert.rejects(stream.cancel("a"), /already completed/);
});

test("a callback that throws does not stop the others", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  const original = console.error;
  console.error = () => {};
  try {
    stream.subscribeJob("a", () => {
      throw new Error("boom");
    });
    stream.subscribeJob("a", (j) => seen.push(j.job_id));
    FakeEventSource.instances[0].send(1, job("a", 1));
    fake.frame();
  } finally {
    console.error = original;
  }
  assert.deepEqual(seen, ["a"]);
});

/** @param {string} id @param {string} parent @param {object} [over] */
function child(id, parent, over = {}) {
  return { ...job(id, 1), parent_id: parent, ...over };
}

test("children of a job reach its children's subscribers, removals too", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  stream.subscribeChildren("p", (j, id) => seen.push([id, j ? j.progress.processed : null]));
  const source = FakeEventSource.instances[0];
  source.open();
  source.send(1, job("p", 1));
  source.send(2, child("c1", "p"));
  source.send(3, child("other", "q"));
  fake.frame();
  assert.deepEqual(seen, [["c1", 1]]);
  assert.deepEqual(stream.childrenOf("p").map((j) => j.job_id), ["c1"]);
  source.send(4, { job_id: "c1" }, "job_removed");
  fake.frame();
  assert.deepEqual(seen, [["c1", 1], ["c1", null]]);
  assert.deepEqual(stream.childrenOf("p"), []);
  // A late subscriber gets the known children in the next frame.
  source.send(5, child("c2", "p"));
  fake.frame();
  const late = [];
  stream.subscribeChildren("p", (j, id) => late.push(id));
  fake.frame();
  assert.deepEqual(late, ["c2"]);
});

test("a followed job missing from the settled snapshot is asked for once, with its children", async () => {
  const fake = fakeEnv();
  fake.setResponder((url) => {
    if (url.endsWith("/jobs/old")) return { status: 200, body: job("old", 10, "completed") };
    if (url.includes("parent=old")) return { status: 200, body: { jobs: [child("k", "old")], next: null } };
    return { status: 404, body: { message: "no such job" } };
  });
  const stream = new ProgressStream({ baseUrl: "/" }, { ...fake.env, snapshotGraceMs: 1000 });
  const seen = [];
  stream.subscribeJob("old", (j) => seen.push(j?.status ?? null));
  stream.subscribeJob("gone", (j) => seen.push(j?.status ?? null));
  stream.subscribeJob("new", () => {});
  const kids = [];
  stream.subscribeChildren("old", (j, id) => kids.push(id));
  const source = FakeEventSource.instances[0];
  source.open();
  source.send(1, job("new", 1));
  await fake.advance(999);
  assert.equal(fake.requests.length, 0, "nothing before the snapshot had time to arrive");
  await fake.advance(1);
  fake.frame();
  const urls = fake.requests.map((r) => r.url).sort();
  assert.deepEqual(urls, [
    "/jupyter-progress/api/jobs/gone",
    "/jupyter-progress/api/jobs/old",
    "/jupyter-progress/api/jobs?limit=100&parent=old",
  ]);
  assert.deepEqual(seen.sort(), ["completed", null]);
  assert.deepEqual(kids, ["k"]);
  await fake.advance(60_000);
  fake.frame();
  assert.equal(fake.requests.length, 3, "asked once, never again");
  // A view of an older job opened later asks at once (the snapshot has settled).
  stream.subscribeJob("later", () => {});
  await fake.advance(0);
  assert.equal(fake.requests.length, 4);
});

test("fetchJobs pages GET jobs with its query; deleteFinished is one DELETE", async () => {
  const fake = fakeEnv();
  fake.setResponder((url, init) =>
    init?.method === "DELETE"
      ? { status: 200, body: { deleted: 2 } }
      : { status: 200, body: { jobs: [job("a", 1)], next: "cur2" } }
  );
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  stream.subscribeAll(() => {});
  const page = await stream.fetchJobs({
    limit: 50,
    before: "cur1",
    q: "ep och",
    status: ["completed", "failed"],
  });
  assert.equal(
    fake.requests[0].url,
    "/jupyter-progress/api/jobs?limit=50&before=cur1&q=ep+och&status=completed&status=failed"
  );
  assert.deepEqual(page.next, "cur2");
  assert.equal(page.jobs[0].job_id, "a");
  const source = FakeEventSource.instances[0];
  source.send(1, job("done", 10, "completed"));
  source.send(2, child("kid", "done", { status: "completed" }));
  source.send(3, job("run", 1));
  const deleted = await stream.deleteFinished();
  assert.equal(deleted, 2);
  assert.equal(fake.requests.length, 2);
  assert.equal(fake.requests[1].url, "/jupyter-progress/api/jobs?status=finished");
  assert.equal(fake.requests[1].init.method, "DELETE");
  assert.equal(fake.requests[1].init.headers["X-XSRFToken"], "xsrf-value");
  assert.deepEqual([...stream.jobs.keys()], ["run"]);
});

test("removals of jobs the page never held do not pile up (retention of old history)", () => {
  const fake = fakeEnv();
  const stream = new ProgressStream({ baseUrl: "/" }, fake.env);
  const seen = [];
  stream.subscribeAll((j, id) => seen.push(id));
  stream.subscribeJob("followed", () => {});
  const source = FakeEventSource.instances[0];
  source.send(1, job("held", 10, "completed"));
  for (let i = 0; i < 1000; i++) source.send(2 + i, { job_id: `old${i}` }, "job_removed");
  source.send(2000, { job_id: "held" }, "job_removed");
  source.send(2001, { job_id: "followed" }, "job_removed");
  fake.frame();
  assert.deepEqual([...stream.removed].sort(), ["followed", "held"]);
  assert.equal(seen.length, 1002, "the jobs list still hears of every removal");
});
