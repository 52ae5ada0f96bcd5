// How numbers, rates and times of a job read, the way tqdm prints them: a job's `unit`
// ("B", "files"; "it" by default) and `unit_scale` (SI prefixes: 1.23 MB/s, not
// 1234567 B/s). Pure functions, no DOM: the views and the tests import them.

/** @typedef {import("./contract.js").Job} Job */

const SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E", "Z"];
const DEFAULT_UNIT = "it";

/**
 * A number in three significant digits and its SI prefix, as tqdm's `format_sizeof`:
 * 9.99, 99.9, 999, then 1.00 k, 12.3 M …
 * @param {number} num
 * @param {number} [divisor]
 * @returns {[number: string, prefix: string]}
 */
export function siParts(num, divisor = 1000) {
  if (!Number.isFinite(num)) return ["?", ""];
  let value = num;
  for (const prefix of SI_PREFIXES) {
    if (Math.abs(value) < 999.5) {
      if (Math.abs(value) < 99.95) {
        if (Math.abs(value) < 9.995) return [value.toFixed(2), prefix];
        return [value.toFixed(1), prefix];
      }
      return [value.toFixed(0), prefix];
    }
    value /= divisor;
  }
  return [value.toFixed(1), "Y"];
}

/**
 * A number with an SI prefix, tqdm's way: "1.23M", "999", "5.50GB".
 * @param {number} num
 * @param {string} [suffix]
 */
export function formatSI(num, suffix = "") {
  const [number, prefix] = siParts(num);
  return `${number}${prefix}${suffix}`;
}

/**
 * A scaled amount with its unit: "1.23 MB", "999 B", "12.0 kfiles".
 * @param {number} num
 * @param {string} unit
 */
function siAmount(num, unit) {
  const [number, prefix] = siParts(num);
  return `${number} ${prefix}${unit}`;
}

/** @param {number} n */
export function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "?";
}

/**
 * How a job's amounts are written: its unit, and the factor its counts are scaled by
 * (null: plain integers with separators).
 * @param {Pick<Job, "unit" | "unit_scale"> | null | undefined} job
 * @returns {{unit: string, scale: number | null}}
 */
export function unitOf(job) {
  const unit = typeof job?.unit === "string" && job.unit ? job.unit : DEFAULT_UNIT;
  const raw = job?.unit_scale;
  let scale = null;
  if (raw === true) scale = 1;
  else if (typeof raw === "number" && Number.isFinite(raw) && raw > 0) scale = raw;
  return { unit, scale };
}

/**
 * One amount of a job, without its unit when counted plainly ("1,234") and with an SI
 * prefix when scaled ("1.23M").
 * @param {number | null | undefined} n
 * @param {Pick<Job, "unit" | "unit_scale"> | null | undefined} job
 */
export function formatAmount(n, job) {
  if (n == null) return "?";
  const { scale } = unitOf(job);
  return scale === null ? formatCount(n) : formatSI(n * scale);
}

/**
 * The counts of a job: "50 / 100 (50.0%)", "50 / 100 files (50.0%)",
 * "12.3 MB / 100 MB (12.3%)"; without a total, "7 items", "7 files", "1.23 MB".
 * @param {Job} job
 */
export function formatCounts(job) {
  const p = job.progress || /** @type {any} */ ({});
  const { unit, scale } = unitOf(job);
  const pct = p.percentage ?? (p.total ? (100 * (p.processed ?? 0)) / p.total : 0);
  const percent = p.total == null ? "" : ` (${Number(pct).toFixed(1)}%)`;
  if (scale !== null) {
    const done = siAmount((p.processed ?? 0) * scale, unit);
    return p.total == null ? done : `${done} / ${siAmount(p.total * scale, unit)}${percent}`;
  }
  const processed = formatCount(p.processed ?? 0);
  if (p.total == null) return `${processed} ${unit === DEFAULT_UNIT ? "items" : unit}`;
  const unitText = unit === DEFAULT_UNIT ? "" : ` ${unit}`;
  return `${processed} / ${formatCount(p.total)}${unitText}${percent}`;
}

/**
 * A job's rate as tqdm writes it: "12.5 it/s", "1.23 MB/s", and the inverse below one
 * per second ("2.50 s/it").
 * @param {number | null | undefined} rate  items per second
 * @param {Pick<Job, "unit" | "unit_scale"> | null} [job]
 */
export function formatRate(rate, job = null) {
  if (rate == null || !Number.isFinite(rate) || rate <= 0) return "";
  const { unit, scale } = unitOf(job);
  const value = rate * (scale ?? 1);
  if (value < 1) {
    const inverse = 1 / value;
    return `${inverse < 100 ? inverse.toFixed(2) : formatCount(inverse)} s/${unit}`;
  }
  if (scale !== null) return `${siAmount(value, unit)}/s`;
  if (value >= 100) return `${formatCount(value)} ${unit}/s`;
  return `${value.toFixed(1)} ${unit}/s`;
}

/** @param {number | null | undefined} seconds */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** @param {string | null | undefined} iso */
export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/**
 * How long ago a time was, coarsely: "just now", "5m ago", "3h ago", "2d ago".
 * @param {string | null | undefined} iso
 * @param {number} [now]
 */
export function formatAge(iso, now = Date.now()) {
  const t = parseTime(iso);
  if (t === null) return "";
  const s = Math.max(0, (now - t) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/**
 * Seconds the job has run (until now, or until it finished).
 * @param {Job} job
 * @param {number} [now]
 */
export function elapsedSeconds(job, now = Date.now()) {
  const start = parseTime(job.started_at) ?? parseTime(job.created_at);
  if (start === null) return null;
  const end = parseTime(job.finished_at) ?? now;
  return Math.max(0, (end - start) / 1000);
}
