// The lab extension's logic that needs no DOM and no JupyterLab (unit-tested in node):
// reading an output's data, deciding that the server does not know a job, the panel's
// filters, a notebook job's executed copy.

import { FINAL_STATUSES, isFinal } from "../contract.js";

/** @typedef {import("../contract.js").Job} Job */
/** @typedef {import("../stream.js").ProgressStream} ProgressStream */

/** The command that opens the Jobs panel; argument `{jobId}` shows that job. */
export const COMMAND_SHOW_JOBS = "jupyter-progress:show-jobs";

/** After the stream is open, how long its first snapshot may take to arrive. */
export const SNAPSHOT_GRACE_MS = 1000;

/**
 * The job in an output's data, if the data is well formed.
 * @param {unknown} data
 * @returns {{jobId: string, saved: Job | null} | null}
 */
export function parseOutputData(data) {
  if (!data || typeof data !== "object") return null;
  const record = /** @type {Record<string, unknown>} */ (data);
  const jobId = record.job_id;
  if (typeof jobId !== "string" || !jobId) return null;
  const job = /** @type {Job | null | undefined} */ (record.job);
  const saved =
    job && typeof job === "object" && job.job_id === jobId && typeof job.status === "string"
      ? job
      : null;
  return { jobId, saved };
}

/**
 * Call `onUnknown` once if the server turns out not to know `jobId`: the stream has been
 * open long enough for its snapshot of every job to arrive, and the job is not in it.
 * (A job the server deleted while we watch comes through the subscription as null.)
 * @param {ProgressStream} stream
 * @param {string} jobId
 * @param {() => void} onUnknown
 * @param {number} [graceMs]
 * @returns {() => void} stop watching
 */
export function watchUnknown(stream, jobId, onUnknown, graceMs = SNAPSHOT_GRACE_MS) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  const check = () => {
    timer = null;
    if (stream.state === "live" && !stream.jobs.has(jobId)) onUnknown();
  };
  const arm = () => {
    if (timer === null && stream.state === "live") timer = setTimeout(check, graceMs);
  };
  const stop = stream.onState((state) => (state === "live" ? arm() : undefined));
  arm();
  return () => {
    stop();
    if (timer !== null) clearTimeout(timer);
  };
}

/**
 * The panel's status filter: all, running (not final), then one per final status.
 * @type {Array<[string, string, (job: Job) => boolean]>} value, label, test
 */
export const FILTERS = [
  ["all", "All", () => true],
  ["running", "Running", (job) => !isFinal(job)],
  ...FINAL_STATUSES.map(
    (status) =>
      /** @type {[string, string, (job: Job) => boolean]} */ ([
        status,
        status[0].toUpperCase() + status.slice(1),
        (job) => job.status === status,
      ])
  ),
];

/**
 * Where a notebook job wrote its executed copy (a path relative to the server root).
 * @param {Job} job
 * @returns {string | null}
 */
export function executedCopyPath(job) {
  const details = /** @type {Record<string, unknown> | undefined} */ (
    /** @type {any} */ (job).details
  );
  if (job.kind !== "notebook" || !details || typeof details !== "object") return null;
  const path = details.output_path;
  return typeof path === "string" && path ? path : null;
}

/**
 * Jobs not finished yet (pending or processing): the status bar's count.
 * @param {Iterable<Job>} jobs
 */
export function countRunning(jobs) {
  let running = 0;
  for (const job of jobs) if (!isFinal(job)) running++;
  return running;
}
