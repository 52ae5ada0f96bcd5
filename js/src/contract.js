// The client side of the public contract, each fact written once: what a job looks like,
// which statuses are final, the log prefix, the notice shown while the event stream is
// down, and the placeholder shown until a job's first state arrives. The stream client,
// the views and the lab extension import these; none of them spells them out again.

/**
 * @typedef {{
 *   processed: number, total: number | null, success: number, errors: number,
 *   percentage: number | null
 * }} Progress
 * @typedef {{
 *   job_id: string, name: string, kind?: string, status: string, progress: Progress,
 *   message?: string, error_samples?: Array<{item: string, error: string}>,
 *   rate?: number | null, eta_seconds?: number | null, created_at?: string | null,
 *   started_at?: string | null, finished_at?: string | null,
 *   parent_id?: string | null, unit?: string, unit_scale?: boolean | number,
 *   postfix?: string, leave?: boolean, details?: Record<string, unknown>
 * }} Job
 *   `parent_id`: the job this one is nested under (a child bar); `unit`, `unit_scale`,
 *   `postfix`: how tqdm would print its counts; `leave`: false means the job is deleted
 *   once it completes; `details`: kind-specific (a notebook job's `cell_title`, `log_tail`).
 */

/** The statuses a job never leaves (the server's final set). */
export const FINAL_STATUSES = Object.freeze(["completed", "failed", "cancelled"]);
const FINAL = new Set(FINAL_STATUSES);

/** @param {Job | null | undefined} job */
export function isFinal(job) {
  return !!job && FINAL.has(job.status);
}

/**
 * Whether a job is nested under another one (a child bar): it shows inside its parent's
 * view, never as a row of its own in the jobs list.
 * @param {Job | null | undefined} job
 */
export function isChild(job) {
  return !!job && typeof job.parent_id === "string" && job.parent_id !== "";
}

/** Every console line of the front end starts with this. */
export const LOG_PREFIX = "[jupyter-progress]";

/** Shown by every view while the page's event stream is down (stream.js polls meanwhile). */
export const STREAM_DOWN_NOTICE =
  "Live updates interrupted: reconnecting, and checking every 5 s meanwhile.";

/**
 * What a view shows for a job before any state of it is known: pending, no total.
 * @param {string} jobId
 * @returns {Job}
 */
export function placeholderJob(jobId) {
  return {
    job_id: jobId,
    name: `job ${jobId.slice(0, 8)}`,
    status: "pending",
    progress: { processed: 0, total: null, success: 0, errors: 0, percentage: null },
  };
}
