// How amounts, rates and times read: tqdm's SI prefixes with unit_scale, its rates.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  formatAge,
  formatCounts,
  formatDuration,
  formatRate,
  formatSI,
} from "../src/format.js";

/** @returns {any} */
function job(progress = {}, overrides = {}) {
  return {
    job_id: "a".repeat(32),
    name: "download",
    status: "processing",
    progress: { processed: 50, total: 100, success: 50, errors: 0, percentage: 50, ...progress },
    ...overrides,
  };
}

test("formatSI writes three significant digits with an SI prefix, like tqdm", () => {
  assert.equal(formatSI(0), "0.00");
  assert.equal(formatSI(9.994), "9.99");
  assert.equal(formatSI(12.34), "12.3");
  assert.equal(formatSI(999), "999");
  assert.equal(formatSI(999.5), "1.00k");
  assert.equal(formatSI(1234567), "1.23M");
  assert.equal(formatSI(5.5e9, "B"), "5.50GB");
  assert.equal(formatSI(2.5e24), "2.5Y");
});

test("a rate with unit_scale is 1.23 MB/s, not 1234567 B/s", () => {
  const bytes = { unit: "B", unit_scale: true };
  assert.equal(formatRate(1234567, bytes), "1.23 MB/s");
  assert.equal(formatRate(1234567, { unit: "B", unit_scale: false }), "1,234,567 B/s");
  assert.equal(formatRate(12.5), "12.5 it/s");
  assert.equal(formatRate(12.5, { unit: "files" }), "12.5 files/s");
  assert.equal(formatRate(0.4), "2.50 s/it", "below one per second: the inverse, as tqdm");
  assert.equal(formatRate(0), "");
  assert.equal(formatRate(null), "");
  // A numeric unit_scale multiplies, as tqdm's does (e.g. 1024-byte blocks).
  assert.equal(formatRate(1000, { unit: "B", unit_scale: 1024 }), "1.02 MB/s");
});

test("counts follow the unit and unit_scale", () => {
  assert.equal(formatCounts(job()), "50 / 100 (50.0%)");
  assert.equal(formatCounts(job({}, { unit: "files" })), "50 / 100 files (50.0%)");
  const scaled = job(
    { processed: 12_345_678, total: 100_000_000, percentage: 12.3 },
    { unit: "B", unit_scale: true }
  );
  assert.equal(formatCounts(scaled), "12.3 MB / 100 MB (12.3%)");
  const open = { processed: 1234567, total: null, percentage: null };
  assert.equal(formatCounts(job(open)), "1,234,567 items");
  assert.equal(formatCounts(job(open, { unit: "rows" })), "1,234,567 rows");
  assert.equal(formatCounts(job(open, { unit: "B", unit_scale: true })), "1.23 MB");
});

test("durations and ages", () => {
  assert.equal(formatDuration(5), "5s");
  assert.equal(formatDuration(65), "1m 05s");
  assert.equal(formatDuration(3700), "1h 01m");
  assert.equal(formatDuration(3 * 86400 + 7200), "3d 2h");
  const now = Date.parse("2026-11-28T12:00:00Z");
  assert.equal(formatAge("2026-11-28T11:59:50Z", now), "just now");
  assert.equal(formatAge("2026-11-28T11:55:00Z", now), "5m ago");
  assert.equal(formatAge("2026-11-28T09:00:00Z", now), "3h ago");
  assert.equal(formatAge("2026-11-20T12:00:00Z", now), "8d ago");
  assert.equal(formatAge(null, now), "");
});
