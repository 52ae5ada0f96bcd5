// The notifications' decisions: which job changes notify, their text, the settings, and
// the one-tab claim.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CLAIM_PREFIX,
  claimJob,
  decideNotification,
  DEFAULT_SETTINGS,
  pruneClaims,
  readSettings,
} from "../src/labextension/notifications.js";

const ID = "b".repeat(32);
const SETTINGS = { ...DEFAULT_SETTINGS, notifyAfterSeconds: 2 };

/** @returns {any} */
function job(overrides = {}) {
  return {
    job_id: ID,
    name: "convert files",
    kind: "reported",
    status: "completed",
    progress: { processed: 12, total: 12, success: 10, errors: 2, percentage: 100 },
    message: "",
    error_samples: [],
    started_at: "2026-11-28T10:00:00Z",
    finished_at: "2026-11-28T10:00:03Z",
    ...overrides,
  };
}

test("a job seen running that completes after the threshold gives a success", () => {
  const n = decideNotification("processing", job(), SETTINGS);
  assert.deepEqual(n, {
    jobId: ID,
    type: "success",
    title: "convert files completed",
    message: "convert files completed: 10 ok, 2 errors of 12 in 3s",
    outputPath: null,
  });
});

test("a job shorter than the threshold gives nothing", () => {
  const short = job({ finished_at: "2026-11-28T10:00:00.500Z" });
  assert.equal(decideNotification("processing", short, SETTINGS), null);
  assert.ok(decideNotification("processing", short, { ...SETTINGS, notifyAfterSeconds: 0 }));
});

test("a job never seen unfinished by this page gives nothing", () => {
  assert.equal(decideNotification(undefined, job(), SETTINGS), null);
  assert.equal(decideNotification("completed", job(), SETTINGS), null);
  assert.equal(decideNotification("failed", job({ status: "failed" }), SETTINGS), null);
});

test("a running job, or a removed one, gives nothing", () => {
  assert.equal(decideNotification("pending", job({ status: "processing" }), SETTINGS), null);
  assert.equal(decideNotification("processing", null, SETTINGS), null);
});

test("a failed job gives an error with its message and first error sample", () => {
  const failed = job({
    status: "failed",
    message: "disk full",
    error_samples: [
      { item: "x.csv", error: "ValueError: bad row" },
      { item: "y.csv", error: "second" },
    ],
  });
  const n = decideNotification("pending", failed, SETTINGS);
  assert.equal(n?.type, "error");
  assert.equal(n?.message, "convert files failed: disk full (x.csv: ValueError: bad row)");
});

test("a cancelled job gives an info; 'failures' keeps only failed ones", () => {
  const cancelled = job({ status: "cancelled", message: "cancelled" });
  assert.equal(decideNotification("processing", cancelled, SETTINGS)?.type, "info");
  const failuresOnly = { ...SETTINGS, notifyOn: /** @type {const} */ ("failures") };
  assert.equal(decideNotification("processing", cancelled, failuresOnly), null);
  assert.equal(decideNotification("processing", job(), failuresOnly), null);
  assert.equal(
    decideNotification("processing", job({ status: "failed" }), failuresOnly)?.type,
    "error"
  );
});

test("a notebook job carries its executed copy; long names and messages are clipped", () => {
  const notebook = job({
    kind: "notebook",
    name: "n".repeat(200),
    details: { output_path: "out/report-executed.ipynb" },
  });
  const n = decideNotification("processing", notebook, SETTINGS);
  assert.equal(n?.outputPath, "out/report-executed.ipynb");
  assert.ok(n && n.message.length <= 140);
  assert.ok(n?.message.startsWith("n".repeat(59) + "… completed"));
  const long = job({ status: "failed", message: "m".repeat(500) });
  assert.equal(decideNotification("processing", long, SETTINGS)?.message.length, 140);
});

test("names stay text: markup is passed through as characters, not interpreted", () => {
  const n = decideNotification("processing", job({ name: "<img src=x onerror=alert(1)>" }), SETTINGS);
  assert.equal(n?.title, "<img src=x onerror=alert(1)> completed");
});

test("readSettings falls back to the defaults on anything odd", () => {
  assert.deepEqual(readSettings(null), DEFAULT_SETTINGS);
  assert.deepEqual(readSettings({ notifyAfterSeconds: -1, notifyOn: "x" }), DEFAULT_SETTINGS);
  assert.deepEqual(
    readSettings({ notifyAfterSeconds: 2, notifyOn: "failures", desktopNotifications: true }),
    { notifyAfterSeconds: 2, notifyOn: "failures", desktopNotifications: true }
  );
});

/** A Storage over a Map (what two tabs of one origin share). */
class MemoryStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this.map = new Map();
  }
  get length() {
    return this.map.size;
  }
  /** @param {number} i */
  key(i) {
    return [...this.map.keys()][i] ?? null;
  }
  /** @param {string} k */
  getItem(k) {
    return this.map.get(k) ?? null;
  }
  /** @param {string} k @param {string} v */
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  /** @param {string} k */
  removeItem(k) {
    this.map.delete(k);
  }
}

test("of two tabs claiming one job at once, exactly one wins", async () => {
  const storage = /** @type {any} */ (new MemoryStorage());
  const env = { storage, settleMs: 5 };
  const results = await Promise.all([claimJob(ID, "tab-a", env), claimJob(ID, "tab-b", env)]);
  assert.deepEqual(results.sort(), [false, true]);
  assert.equal(await claimJob(ID, "tab-c", env), false);
  assert.equal(await claimJob("c".repeat(32), "tab-c", env), true);
});

test("without storage every tab notifies; old claims are pruned", async () => {
  assert.equal(await claimJob(ID, "tab-a", { storage: null }), true);
  const storage = /** @type {any} */ (new MemoryStorage());
  storage.setItem(CLAIM_PREFIX + "old", "tab-a 1000");
  storage.setItem(CLAIM_PREFIX + "new", `tab-a ${Date.now()}`);
  storage.setItem("other", "kept");
  pruneClaims(storage, Date.now());
  assert.deepEqual([...storage.map.keys()].sort(), [CLAIM_PREFIX + "new", "other"]);
});
