// The lab extension's logic that needs no DOM and no JupyterLab (unit-tested in node):
// reading an output's data, the panel's filters, a notebook job's executed copy, the
// status bar's count.

import { isChild, isFinal } from "../contract.js";
import { JOB_FILTERS } from "../history.js";

/** @typedef {import("../contract.js").Job} Job */

/** The command that opens the Jobs panel; argument `{jobId}` shows that job. */
export const COMMAND_SHOW_JOBS = "jupyter-progress:show-jobs";

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

/** The panel's status filter: all, running (not final), then one per final status. */
export const FILTERS = JOB_FILTERS;

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
 * Top-level jobs not finished yet (pending or processing): the status bar's count (a
 * nested bar is part of its parent's work, not a job of its own).
 * @param {Iterable<Job>} jobs
 */
export function countRunning(jobs) {
  let running = 0;
  for (const job of jobs) if (!isFinal(job) && !isChild(job)) running++;
  return running;
}
