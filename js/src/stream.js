// The page-wide event stream client of jupyter-progress.
//
// One EventSource per page and server, shared by every view (anywidget views, the
// JupyterLab renderer, the side panel, the status bar): browsers allow six HTTP/1.1
// connections per origin, so one stream per widget would starve the page. The hub lives
// on `globalThis[Symbol.for("jupyter-progress.stream")]`, keyed by stream URL, so two
// bundles of this module on one page (the anywidget ESM and the lab extension) still
// share one connection.
//
// Flow: server event -> latest state per job (cache) -> dirty set -> one callback per
// job per animation frame. When the stream fails, the client reconnects by itself with
// its resume point in the URL (`?last_event_id=`) and, while it is down, polls the REST
// API every 5 s; polling stops as soon as the stream is open again.
//
// The unfiltered stream's snapshot holds the running jobs and only the newest finished
// ones, so a view of an older job asks for it once (`GET jobs/{id}` and its children with
// `?parent=`), after the snapshot had time to arrive; the jobs list pages older jobs with
// `fetchJobs` when the user scrolls or searches. Neither repeats while the stream is live.
//
// No anywidget or JupyterLab specifics here: the lab extension imports it too.

import { isChild, isFinal, LOG_PREFIX } from "./contract.js";

export const API_PATH = "jupyter-progress/api/";
export const POLL_INTERVAL_MS = 5000;
const HUB_KEY = Symbol.for("jupyter-progress.stream");
const ALL = "*";
const CHILDREN = "children:";
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];
/** After the stream opens, how long its first snapshot may take to arrive. */
export const SNAPSHOT_GRACE_MS = 1000;
/** A page of the jobs list, and the most children fetched for an old job. */
export const PAGE_SIZE = 50;
const CHILDREN_PAGE = 100;

/**
 * @typedef {import("./contract.js").Job} Job
 * @typedef {(job: Job | null, jobId: string) => void} JobCallback
 *   Called with the job's latest state, or null when the job was removed (deleted on
 *   the server, or unknown to it: 404 while polling).
 * @typedef {"connecting" | "live" | "down" | "closed"} StreamState
 * @typedef {(state: StreamState) => void} StateCallback
 * @typedef {{
 *   EventSource?: any, fetch?: typeof fetch,
 *   requestAnimationFrame?: (cb: () => void) => any,
 *   cancelAnimationFrame?: (handle: any) => void,
 *   setTimeout?: (cb: () => void, ms: number) => any,
 *   clearTimeout?: (handle: any) => void,
 *   getCookie?: (name: string) => string | null,
 *   pollIntervalMs?: number, reconnectDelaysMs?: number[], snapshotGraceMs?: number,
 * }} Environment  Injectable globals (tests pass fakes).
 * @typedef {{jobs: Job[], next: string | null}} JobsPage  one page of `GET jobs`
 * @typedef {{
 *   limit?: number, before?: string | null, q?: string, status?: string[],
 *   parent?: string,
 * }} JobsQuery
 * @typedef {{ baseUrl: string, token?: string }} ServerConfig
 */

/**
 * The server's base URL and token from the page's `#jupyter-config-data` (JupyterLab 4,
 * Notebook 7). Null outside Jupyter's own pages (VS Code, Colab, static viewers).
 * @param {Document | undefined} [doc]
 * @returns {ServerConfig | null}
 */
export function pageConfig(doc = globalThis.document) {
  const element = doc?.getElementById?.("jupyter-config-data");
  if (!element) return null;
  try {
    const data = JSON.parse(element.textContent || "{}");
    if (typeof data.baseUrl !== "string") return null;
    return { baseUrl: data.baseUrl, token: typeof data.token === "string" ? data.token : "" };
  } catch (error) {
    console.warn(LOG_PREFIX, "unreadable jupyter-config-data", error);
    return null;
  }
}

/** @param {string} baseUrl */
function normalizeBase(baseUrl) {
  return baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
}

/**
 * @param {string} name
 * @returns {string | null}
 */
function documentCookie(name) {
  const cookies = globalThis.document?.cookie;
  if (!cookies) return null;
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** A page's shared connection to one server's event stream. */
export class ProgressStream {
  /**
   * @param {ServerConfig} config
   * @param {Environment} [env]
   */
  constructor(config, env = {}) {
    this.baseUrl = normalizeBase(config.baseUrl);
    this.token = config.token || "";
    this.apiUrl = this.baseUrl + API_PATH;
    this.url = this.apiUrl + "events";
    const g = /** @type {any} */ (globalThis);
    this._EventSource = env.EventSource ?? g.EventSource;
    this._fetch = env.fetch ?? ((/** @type {any[]} */ ...a) => g.fetch(...a));
    // A hidden tab runs no animation frames at all: there a timer delivers (throttled by
    // the browser to about once a second), so a job's end still reaches its listeners
    // (the notifications) while the user looks elsewhere.
    const useTimer = () => !g.requestAnimationFrame || !!g.document?.hidden;
    this._raf =
      env.requestAnimationFrame ??
      ((/** @type {() => void} */ cb) =>
        useTimer() ? { timer: g.setTimeout(cb, 16) } : { frame: g.requestAnimationFrame(cb) });
    this._cancelRaf =
      env.cancelAnimationFrame ??
      ((/** @type {any} */ h) =>
        h.frame !== undefined ? g.cancelAnimationFrame(h.frame) : g.clearTimeout(h.timer));
    this._setTimeout = env.setTimeout ?? ((cb, ms) => g.setTimeout(cb, ms));
    this._clearTimeout = env.clearTimeout ?? ((h) => g.clearTimeout(h));
    this._getCookie = env.getCookie ?? documentCookie;
    this.pollIntervalMs = env.pollIntervalMs ?? POLL_INTERVAL_MS;
    this._reconnectDelays = env.reconnectDelaysMs ?? RECONNECT_DELAYS_MS;
    this._snapshotGraceMs = env.snapshotGraceMs ?? SNAPSHOT_GRACE_MS;

    /** @type {Map<string, Set<JobCallback>>} job id (or "*") -> callbacks */
    this._subscribers = new Map();
    /** @type {Set<StateCallback>} */
    this._stateListeners = new Set();
    /** @type {Map<string, Job>} latest known state of every job */
    this.jobs = new Map();
    /** @type {Set<string>} ids of jobs the server does not know (removed or 404) */
    this.removed = new Set();
    /** @type {Set<string>} jobs changed since the last frame */
    this._dirty = new Set();
    /** @type {Map<string, Set<string>>} parent id -> ids of its known children */
    this._children = new Map();
    /** @type {Map<string, string>} child id -> parent id (kept until its removal is told) */
    this._parentOf = new Map();
    /** The first snapshot had time to arrive: a followed job missing from it is asked for. */
    this.settled = false;
    this._settleTimer = null;
    /** @type {Set<string>} jobs (and parents of children) asked for once already */
    this._lookedUp = new Set();
    this._childrenLoaded = new Set();
    this._lookupTimer = null;
    this._frame = null;
    /** @type {any} */
    this._source = null;
    /** @type {string | null} */
    this.lastEventId = null;
    /** @type {StreamState} */
    this.state = "closed";
    this._reconnectTimer = null;
    this._pollTimer = null;
    this._failures = 0;
    this._polling = false;
    /** Counters for tests and benchmarks. */
    this.stats = { connects: 0, polls: 0, frames: 0, callbacks: 0, lookups: 0 };
  }

  // ----- subscriptions ----------------------------------------------------------------

  /**
   * Follow one job. The callback gets the latest state at most once per frame (and at
   * once, in the next frame, if the state is already known).
   * @param {string} jobId
   * @param {JobCallback} callback
   * @returns {() => void} unsubscribe
   */
  subscribeJob(jobId, callback) {
    return this._subscribe(jobId, callback);
  }

  /**
   * Follow every job on the server (the jobs panel); the callback runs once per changed
   * job per frame.
   * @param {JobCallback} callback
   * @returns {() => void} unsubscribe
   */
  subscribeAll(callback) {
    return this._subscribe(ALL, callback);
  }

  /**
   * Follow the children of a job (its nested bars): the callback gets each known child
   * (soon), then every change of one, and null with the child's id when one is removed.
   * @param {string} parentId
   * @param {JobCallback} callback
   * @returns {() => void} unsubscribe
   */
  subscribeChildren(parentId, callback) {
    return this._subscribe(CHILDREN + parentId, callback);
  }

  /**
   * The known children of a job, in no particular order.
   * @param {string} parentId
   * @returns {Job[]}
   */
  childrenOf(parentId) {
    const ids = this._children.get(parentId);
    if (!ids) return [];
    return [...ids].map((id) => this.jobs.get(id)).filter((job) => !!job);
  }

  /**
   * @param {StateCallback} callback  called with every change of `state`
   * @returns {() => void}
   */
  onState(callback) {
    this._stateListeners.add(callback);
    return () => this._stateListeners.delete(callback);
  }

  /**
   * @param {string} key
   * @param {JobCallback} callback
   */
  _subscribe(key, callback) {
    let callbacks = this._subscribers.get(key);
    if (!callbacks) this._subscribers.set(key, (callbacks = new Set()));
    // Wrap so that one function subscribed twice still unsubscribes once per call.
    /** @type {JobCallback} */
    const entry = (job, id) => callback(job, id);
    callbacks.add(entry);
    if (key === ALL) {
      for (const id of this.jobs.keys()) this._markDirty(id);
    } else if (key.startsWith(CHILDREN)) {
      for (const id of this._children.get(key.slice(CHILDREN.length)) ?? []) {
        this._deliverSoon(key, id, entry);
      }
    } else if (this.jobs.has(key) || this.removed.has(key)) {
      this._deliverSoon(key, key, entry);
    } else if (this.settled && this.state === "live") {
      this._scheduleLookup();
    }
    if (this.state === "closed") this._connect();
    else if (this.state === "down") this._schedulePoll(0);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      callbacks.delete(entry);
      if (callbacks.size === 0) this._subscribers.delete(key);
      if (this._subscribers.size === 0) this.close();
    };
  }

  /** Number of callbacks subscribed (tests). */
  get subscriberCount() {
    let count = 0;
    for (const callbacks of this._subscribers.values()) count += callbacks.size;
    return count;
  }

  // ----- the EventSource --------------------------------------------------------------

  /** @param {Record<string, string>} [params] */
  _url(params = {}) {
    const query = new URLSearchParams(params);
    if (this.token) query.set("token", this.token);
    const text = query.toString();
    return text ? `${this.url}?${text}` : this.url;
  }

  _connect() {
    this._clearReconnect();
    if (!this._EventSource) {
      console.warn(LOG_PREFIX, "no EventSource in this page: polling only");
      this._setState("down");
      return;
    }
    const params = /** @type {Record<string, string>} */ ({});
    if (this.lastEventId) params.last_event_id = this.lastEventId;
    const source = new this._EventSource(this._url(params));
    this._source = source;
    this.stats.connects += 1;
    if (this.state !== "down") this._setState("connecting");
    /** @param {any} event */
    const onUpdate = (event) => this._onEvent(event, false);
    /** @param {any} event */
    const onRemove = (event) => this._onEvent(event, true);
    source.addEventListener("open", () => {
      if (this._source !== source) return;
      this._failures = 0;
      this._stopPolling();
      this._setState("live");
      // Each (re)connection's snapshot gets its grace; then unknown followed jobs are
      // asked for (each id once per page).
      if (this._settleTimer === null) {
        this._settleTimer = this._setTimeout(() => {
          this._settleTimer = null;
          this.settled = true;
          this._scheduleLookup();
        }, this._snapshotGraceMs);
      }
    });
    source.addEventListener("job_updated", onUpdate);
    source.addEventListener("job_removed", onRemove);
    source.addEventListener("error", () => {
      if (this._source !== source) return;
      // Any error: close and reconnect ourselves with the resume point in the URL
      // (a non-200 answer would be final for the EventSource anyway).
      source.close();
      this._source = null;
      const wasLive = this.state === "live";
      this._setState("down");
      if (wasLive) console.warn(LOG_PREFIX, "event stream lost; polling every 5 s until it is back");
      this._schedulePoll(0);
      this._scheduleReconnect();
    });
  }

  _scheduleReconnect() {
    this._clearReconnect();
    const delays = this._reconnectDelays;
    const delay = delays[Math.min(this._failures, delays.length - 1)];
    this._failures += 1;
    this._reconnectTimer = this._setTimeout(() => {
      this._reconnectTimer = null;
      if (this._subscribers.size > 0) this._connect();
    }, delay);
  }

  _clearReconnect() {
    if (this._reconnectTimer !== null) this._clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  /**
   * @param {{data: string, lastEventId?: string}} event
   * @param {boolean} removed
   */
  _onEvent(event, removed) {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
    let payload;
    try {
      payload = JSON.parse(event.data);
    } catch (error) {
      console.warn(LOG_PREFIX, "unreadable event", error);
      return;
    }
    const data = payload?.data;
    if (!data || typeof data.job_id !== "string") return;
    if (removed) this._remove(data.job_id);
    else this._store(data);
  }

  /** @param {Job} job */
  _store(job) {
    const id = job.job_id;
    this.removed.delete(id);
    this.jobs.set(id, job);
    if (isChild(job)) {
      const parent = /** @type {string} */ (job.parent_id);
      this._parentOf.set(id, parent);
      let ids = this._children.get(parent);
      if (!ids) this._children.set(parent, (ids = new Set()));
      ids.add(id);
    }
    this._markDirty(id);
  }

  /** @param {string} jobId */
  _remove(jobId) {
    // Remembered only for a job the page held or follows: retention may remove thousands
    // of old jobs the page never saw, and this set must not grow with them.
    if (this.jobs.delete(jobId) || this._subscribers.has(jobId)) this.removed.add(jobId);
    const parent = this._parentOf.get(jobId);
    if (parent !== undefined) {
      const ids = this._children.get(parent);
      ids?.delete(jobId);
      if (ids && ids.size === 0) this._children.delete(parent);
    }
    this._markDirty(jobId);
  }

  // ----- coalescing: one callback per job per animation frame -------------------------

  /** @param {string} jobId */
  _markDirty(jobId) {
    this._dirty.add(jobId);
    if (this._frame === null) this._frame = this._raf(() => this._flush());
  }

  /**
   * @param {string} key  the subscription (a job id, or children of one)
   * @param {string} jobId
   * @param {JobCallback} callback
   */
  _deliverSoon(key, jobId, callback) {
    this._raf(() => {
      if (!this._subscribers.get(key)?.has(callback)) return;
      callback(this.jobs.get(jobId) ?? null, jobId);
    });
  }

  _flush() {
    this._frame = null;
    const dirty = [...this._dirty];
    this._dirty.clear();
    this.stats.frames += 1;
    const all = this._subscribers.get(ALL);
    for (const id of dirty) {
      const job = this.jobs.get(id) ?? null;
      const parent = this._parentOf.get(id);
      if (!job) this._parentOf.delete(id);
      const siblings = parent === undefined ? undefined : this._subscribers.get(CHILDREN + parent);
      for (const callbacks of [this._subscribers.get(id), siblings, all]) {
        if (!callbacks) continue;
        for (const callback of [...callbacks]) {
          this.stats.callbacks += 1;
          try {
            callback(job, id);
          } catch (error) {
            console.error(LOG_PREFIX, "a view failed to update", error);
          }
        }
      }
    }
  }

  // ----- polling while the stream is down ---------------------------------------------

  /** @param {number} delay */
  _schedulePoll(delay) {
    if (this._pollTimer !== null || this.state !== "down") return;
    this._pollTimer = this._setTimeout(() => {
      this._pollTimer = null;
      this._poll();
    }, delay);
  }

  _stopPolling() {
    if (this._pollTimer !== null) this._clearTimeout(this._pollTimer);
    this._pollTimer = null;
  }

  async _poll() {
    if (this.state !== "down" || this._polling) return;
    this._polling = true;
    try {
      /** @type {Set<string>} */
      const seen = new Set();
      if (this._subscribers.has(ALL)) {
        // The running top-level jobs in one request; the running ones it misses (they
        // ended, or are children) are asked for one by one below. Finished jobs stay.
        const body = await this._get("jobs?status=pending&status=processing&limit=1000");
        if (body && Array.isArray(body.jobs) && this.state === "down") {
          for (const job of body.jobs) {
            seen.add(job.job_id);
            this._store(job);
          }
        }
      }
      const followed = [...this._subscribers.keys()].filter(
        (id) => id !== ALL && !id.startsWith(CHILDREN)
      );
      const running = this._subscribers.has(ALL) ? [...this.jobs.keys()] : [];
      const ids = [...new Set([...followed, ...running])].filter(
        (id) => !seen.has(id) && !isFinal(this.jobs.get(id)) && !this.removed.has(id)
      );
      for (const id of ids) {
        if (this.state !== "down") break;
        const job = await this._get(`jobs/${encodeURIComponent(id)}`, id);
        if (job && this.state === "down") this._store(job);
      }
    } finally {
      this._polling = false;
    }
    if (this.state === "down") this._schedulePoll(this.pollIntervalMs);
  }

  /**
   * @param {string} path
   * @param {string} [jobId]  set: a 404 means this job is unknown to the server
   */
  async _get(path, jobId) {
    this.stats.polls += 1;
    try {
      const response = await this._fetch(this.apiUrl + path, {
        headers: this._headers(),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 404 && jobId) {
        this._remove(jobId);
        return null;
      }
      if (!response.ok) return null;
      return await response.json();
    } catch (error) {
      return null;
    }
  }

  /** @returns {Record<string, string>} */
  _headers() {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.token) headers.Authorization = `token ${this.token}`;
    const xsrf = this._getCookie("_xsrf");
    if (xsrf) headers["X-XSRFToken"] = xsrf;
    return headers;
  }

  // ----- jobs the snapshot does not hold -----------------------------------------------

  _scheduleLookup() {
    if (this._lookupTimer !== null) return;
    this._lookupTimer = this._setTimeout(() => {
      this._lookupTimer = null;
      void this._lookupMissing();
    }, 0);
  }

  /** Ask once for every followed job the settled snapshot did not hold (older jobs). */
  async _lookupMissing() {
    if (!this.settled || this.state !== "live") return;
    const missing = [...this._subscribers.keys()].filter(
      (id) =>
        id !== ALL &&
        !id.startsWith(CHILDREN) &&
        !this.jobs.has(id) &&
        !this.removed.has(id) &&
        !this._lookedUp.has(id)
    );
    await Promise.all(
      missing.map(async (id) => {
        this._lookedUp.add(id);
        this.stats.lookups += 1;
        const job = await this._get(`jobs/${encodeURIComponent(id)}`, id);
        if (!job || typeof job.job_id !== "string") return;
        this._store(job);
        await this.loadChildren(id);
      })
    );
  }

  /**
   * Ask once for the children of a job that is older than the stream's snapshot (its
   * children reached no event of this page). Later changes come from the stream.
   * @param {string} parentId
   */
  async loadChildren(parentId) {
    if (this._childrenLoaded.has(parentId)) return;
    this._childrenLoaded.add(parentId);
    try {
      const page = await this.fetchJobs({ parent: parentId, limit: CHILDREN_PAGE });
      for (const job of page.jobs) {
        if (!this.jobs.has(job.job_id) && !this.removed.has(job.job_id)) this._store(job);
      }
    } catch (error) {
      this._childrenLoaded.delete(parentId);
      console.warn(LOG_PREFIX, "could not load the children of", parentId, error);
    }
  }

  /**
   * One page of `GET jobs` (top-level jobs, newest first; `parent`: that job's children).
   * The jobs list calls it when the user scrolls past what it holds, or searches.
   * @param {JobsQuery} [query]
   * @returns {Promise<JobsPage>}
   */
  async fetchJobs(query = {}) {
    const params = new URLSearchParams();
    params.set("limit", String(query.limit ?? PAGE_SIZE));
    if (query.before) params.set("before", query.before);
    if (query.q) params.set("q", query.q);
    for (const status of query.status ?? []) params.append("status", status);
    if (query.parent) params.set("parent", query.parent);
    const response = await this._fetch(`${this.apiUrl}jobs?${params}`, {
      headers: this._headers(),
      credentials: "same-origin",
      cache: "no-store",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) throw new Error(body?.message || `HTTP ${response.status}`);
    const jobs = Array.isArray(body?.jobs)
      ? body.jobs.filter((/** @type {any} */ job) => job && typeof job.job_id === "string")
      : [];
    return { jobs, next: typeof body?.next === "string" && body.next ? body.next : null };
  }

  // ----- commands ---------------------------------------------------------------------

  /**
   * Forget every finished job on the server in one request (`DELETE jobs?status=finished`).
   * The server tells each removal on the stream; the known finished jobs go at once.
   * @returns {Promise<number>} how many the server deleted
   */
  async deleteFinished() {
    const body = await this._post("jobs?status=finished", "DELETE");
    for (const [id, job] of [...this.jobs]) {
      if (isFinal(job) && !isChild(job)) this._remove(id);
    }
    for (const [id, job] of [...this.jobs]) {
      const parent = job.parent_id;
      if (isChild(job) && parent && this.removed.has(parent)) this._remove(id);
    }
    return typeof body?.deleted === "number" ? body.deleted : 0;
  }

  /**
   * Ask the server to cancel a job (POST with the XSRF header or the token).
   * @param {string} jobId
   * @returns {Promise<Job>}
   */
  async cancel(jobId) {
    return this._post(`jobs/${encodeURIComponent(jobId)}/cancel`, "POST");
  }

  /**
   * Forget a finished job on the server.
   * @param {string} jobId
   */
  async remove(jobId) {
    return this._post(`jobs/${encodeURIComponent(jobId)}`, "DELETE");
  }

  /**
   * @param {string} path
   * @param {string} method
   */
  async _post(path, method) {
    const response = await this._fetch(this.apiUrl + path, {
      method,
      headers: { ...this._headers(), "Content-Type": "application/json" },
      credentials: "same-origin",
      body: method === "POST" ? "{}" : undefined,
    });
    if (response.status === 204) return null;
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const message = body?.message || `HTTP ${response.status}`;
      throw new Error(message);
    }
    if (body && typeof body.job_id === "string") this._store(body);
    return body;
  }

  // ----- lifecycle --------------------------------------------------------------------

  /** @param {StreamState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const listener of [...this._stateListeners]) {
      try {
        listener(state);
      } catch (error) {
        console.error(LOG_PREFIX, "a state listener failed", error);
      }
    }
  }

  /** Close the stream and every timer (the last subscriber left). */
  close() {
    this._clearReconnect();
    this._stopPolling();
    if (this._settleTimer !== null) this._clearTimeout(this._settleTimer);
    this._settleTimer = null;
    if (this._lookupTimer !== null) this._clearTimeout(this._lookupTimer);
    this._lookupTimer = null;
    if (this._frame !== null) this._cancelRaf(this._frame);
    this._frame = null;
    this._dirty.clear();
    if (this._source) this._source.close();
    this._source = null;
    this._failures = 0;
    this._setState("closed");
  }
}

/**
 * The page's shared stream to a server, created on first use. Without a config, the
 * page's `#jupyter-config-data` is read; null when there is none (no server reachable).
 * @param {Partial<ServerConfig>} [config]
 * @param {Environment} [env]
 * @returns {ProgressStream | null}
 */
export function getStream(config, env) {
  const found = config?.baseUrl != null ? /** @type {ServerConfig} */ (config) : pageConfig();
  if (!found) return null;
  const g = /** @type {any} */ (globalThis);
  /** @type {Map<string, ProgressStream>} */
  const hub = g[HUB_KEY] ?? (g[HUB_KEY] = new Map());
  const stream = new ProgressStream(found, env);
  const key = stream._url();
  const existing = hub.get(key);
  if (existing) return existing;
  hub.set(key, stream);
  return stream;
}

/** Forget every shared stream (tests). */
export function resetHub() {
  const g = /** @type {any} */ (globalThis);
  const hub = g[HUB_KEY];
  if (hub) for (const stream of hub.values()) stream.close();
  delete g[HUB_KEY];
}
