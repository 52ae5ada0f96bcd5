// The jobs list's model, without DOM: every top-level job the page knows (the stream's
// running jobs and newest finished ones, plus the older pages fetched on scroll or
// search), their order (running first, then newest first), the status filters and the
// name search, and what is left to fetch from the server for the current query.

import { FINAL_STATUSES, isChild, isFinal } from "./contract.js";

/** @typedef {import("./contract.js").Job} Job */
/**
 * @typedef {[value: string, label: string, test: (job: Job) => boolean, statuses: string[]]}
 *   JobFilter  value, label, the local test, and the server's `status` values for it
 *   (none: every status)
 * @typedef {{filter: JobFilter | null, q: string}} Query
 * @typedef {{next: string | null, complete: boolean, loading: boolean, fetched: boolean}} Paging
 */

/** The status filters: all, running (not final), then one per final status. */
export const JOB_FILTERS = /** @type {JobFilter[]} */ ([
  ["all", "All", () => true, []],
  ["running", "Running", (job) => !isFinal(job), ["pending", "processing"]],
  ...FINAL_STATUSES.map(
    (status) =>
      /** @type {JobFilter} */ ([
        status,
        status[0].toUpperCase() + status.slice(1),
        (job) => job.status === status,
        [status],
      ])
  ),
]);

/**
 * Running jobs first, then the newest first (created_at descending: ISO times sort as
 * strings), then by id descending so the order is total.
 * @param {Job} a
 * @param {Job} b
 */
export function compareJobs(a, b) {
  const runningA = isFinal(a) ? 1 : 0;
  const runningB = isFinal(b) ? 1 : 0;
  if (runningA !== runningB) return runningA - runningB;
  const createdA = a.created_at ?? "";
  const createdB = b.created_at ?? "";
  if (createdA !== createdB) return createdA < createdB ? 1 : -1;
  return a.job_id < b.job_id ? 1 : a.job_id > b.job_id ? -1 : 0;
}

/**
 * @param {Job} job
 * @param {Query} query
 */
export function matchesQuery(job, query) {
  if (query.filter && !query.filter[2](job)) return false;
  const q = query.q.trim().toLowerCase();
  return !q || String(job.name ?? "").toLowerCase().includes(q);
}

/** @param {Query} query */
export function queryKey(query) {
  return `${query.filter?.[0] ?? "all"}\u0000${query.q.trim().toLowerCase()}`;
}

/** The known top-level jobs and, per query, how far the server's pages were read. */
export class JobHistory {
  constructor() {
    /** @type {Map<string, Job>} */
    this.jobs = new Map();
    /** @type {Map<string, Paging>} */
    this._paging = new Map();
    /** Every job of the server is known (a fetch of everything ended, or all finished
     * ones were deleted): no query needs the server. */
    this.everything = false;
  }

  /**
   * Add or replace a job; children are not rows of the list.
   * @param {Job} job
   * @returns {boolean} whether it is a row of the list
   */
  upsert(job) {
    if (isChild(job)) return false;
    this.jobs.set(job.job_id, job);
    return true;
  }

  /** @param {string} jobId */
  remove(jobId) {
    return this.jobs.delete(jobId);
  }

  /** Forget the finished jobs (all of them were deleted on the server). */
  removeFinished() {
    for (const [id, job] of [...this.jobs]) if (isFinal(job)) this.jobs.delete(id);
    this.everything = true;
    this._paging.clear();
  }

  /**
   * The known jobs matching a query, in list order.
   * @param {Query} query
   * @returns {Job[]}
   */
  matching(query) {
    const out = [];
    for (const job of this.jobs.values()) if (matchesQuery(job, query)) out.push(job);
    return out.sort(compareJobs);
  }

  /** @param {Query} query */
  paging(query) {
    const key = queryKey(query);
    let state = this._paging.get(key);
    if (!state) {
      state = { next: null, complete: false, loading: false, fetched: false };
      this._paging.set(key, state);
    }
    return state;
  }

  /**
   * Whether the server may hold jobs of this query the page does not: not when every job
   * is known, nor for running jobs (the stream's snapshot holds all of them), nor once
   * the query's pages ended.
   * @param {Query} query
   * @param {boolean} streamLive
   */
  mayHaveMore(query, streamLive) {
    if (this.everything) return false;
    const statuses = query.filter?.[3] ?? [];
    if (streamLive && statuses.length && statuses.every((s) => !FINAL_STATUSES.includes(s))) {
      return false;
    }
    return !this.paging(query).complete;
  }

  /**
   * The request for the query's next page.
   * @param {Query} query
   * @param {number} limit
   * @returns {import("./stream.js").JobsQuery}
   */
  nextRequest(query, limit) {
    const state = this.paging(query);
    /** @type {import("./stream.js").JobsQuery} */
    const request = { limit };
    if (state.next) request.before = state.next;
    const q = query.q.trim();
    if (q) request.q = q;
    const statuses = query.filter?.[3] ?? [];
    if (statuses.length) request.status = statuses;
    return request;
  }

  /**
   * Take a page the server returned for a query.
   * @param {Query} query
   * @param {import("./stream.js").JobsPage} page
   * @param {(id: string) => boolean} [removed]  jobs deleted meanwhile (not added back)
   */
  addPage(query, page, removed = () => false) {
    const state = this.paging(query);
    state.fetched = true;
    state.next = page.next;
    state.complete = page.next === null;
    for (const job of page.jobs) {
      if (removed(job.job_id)) continue;
      const known = this.jobs.get(job.job_id);
      // The stream's state is newer than a page's, except for a job the page saw end.
      if (!known || (isFinal(job) && !isFinal(known))) this.upsert(job);
    }
    if (state.complete && !query.filter?.[3]?.length && !query.q.trim()) this.everything = true;
  }

  /** Running (pending or processing) top-level jobs. */
  get running() {
    let count = 0;
    for (const job of this.jobs.values()) if (!isFinal(job)) count++;
    return count;
  }
}
