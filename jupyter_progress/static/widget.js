// src/render.js
var FINAL = /* @__PURE__ */ new Set(["completed", "failed", "cancelled"]);
var MAX_SAMPLES_SHOWN = 5;
function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== void 0) node.textContent = text;
  return node;
}
var _a;
var ticker = (
  /** @type {any} */
  globalThis[_a = Symbol.for("jupyter-progress.ticker")] ?? (globalThis[_a] = {
    paints: /* @__PURE__ */ new Set(),
    timer: null
  })
);
function syncTicker(ms) {
  if (ticker.paints.size > 0 && ticker.timer === null) {
    ticker.timer = setInterval(() => {
      for (const paint of ticker.paints) paint();
    }, ms);
  } else if (ticker.paints.size === 0 && ticker.timer !== null) {
    clearInterval(ticker.timer);
    ticker.timer = null;
  }
}
function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "?";
}
function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}
function formatRate(rate) {
  if (rate == null || !Number.isFinite(rate) || rate <= 0) return "";
  if (rate >= 100) return `${Math.round(rate).toLocaleString("en-US")} items/s`;
  if (rate >= 1) return `${rate.toFixed(1)} items/s`;
  return `${(60 * rate).toFixed(1)} items/min`;
}
function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}
function elapsedSeconds(job, now = Date.now()) {
  const start = parseTime(job.started_at) ?? parseTime(job.created_at);
  if (start === null) return null;
  const end = parseTime(job.finished_at) ?? now;
  return Math.max(0, (end - start) / 1e3);
}
function summary(job) {
  const p = job.progress || /** @type {any} */
  {};
  const processed = formatCount(p.processed ?? 0);
  if (p.total == null) return `${processed} items`;
  const pct = p.percentage ?? (p.total ? 100 * (p.processed ?? 0) / p.total : 0);
  return `${processed} / ${formatCount(p.total)} (${Number(pct).toFixed(1)}%)`;
}
function createJobView(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const root = el(doc, "div", "jp-progress-widget");
  root.dataset.status = "pending";
  const header = el(doc, "div", "jp-progress-header");
  const name = el(doc, "span", "jp-progress-name");
  const badge = el(doc, "span", "jp-progress-badge");
  const cancel = el(doc, "button", "jp-progress-cancel jp-mod-styled", "Cancel");
  cancel.type = "button";
  cancel.title = "Ask the server to cancel this job";
  const remove = el(doc, "button", "jp-progress-remove jp-mod-styled", "\xD7");
  remove.type = "button";
  remove.title = "Forget this finished job";
  remove.setAttribute("aria-label", "Forget this finished job");
  remove.hidden = true;
  header.append(name, badge, cancel, remove);
  const bar = el(doc, "div", "jp-progress-bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuenow", "0");
  const fill = el(doc, "div", "jp-progress-fill");
  bar.append(fill);
  const stats = el(doc, "div", "jp-progress-stats");
  const counts = el(doc, "span", "jp-progress-counts");
  const outcome = el(doc, "span", "jp-progress-outcome");
  const rate = el(doc, "span", "jp-progress-rate");
  const eta = el(doc, "span", "jp-progress-eta");
  const elapsed = el(doc, "span", "jp-progress-elapsed");
  stats.append(counts, outcome, rate, eta, elapsed);
  const message = el(doc, "div", "jp-progress-message");
  const errors = el(doc, "details", "jp-progress-errors");
  const errorsSummary = el(doc, "summary");
  const errorsList = el(doc, "ul");
  errors.append(errorsSummary, errorsList);
  errors.hidden = true;
  const notice = el(doc, "div", "jp-progress-notice");
  notice.hidden = true;
  root.append(header, bar, stats, message, errors, notice);
  container.append(root);
  let current = null;
  let samplesShown = "";
  const paintElapsed = () => {
    elapsed.textContent = current ? `elapsed ${formatDuration(elapsedSeconds(current))}` : "";
  };
  const setTicker = (on) => {
    if (on) ticker.paints.add(paintElapsed);
    else ticker.paints.delete(paintElapsed);
    syncTicker(options.tickMs ?? 1e3);
  };
  cancel.addEventListener("click", async () => {
    if (!current || !options.onCancel) return;
    cancel.disabled = true;
    cancel.textContent = "Cancelling\u2026";
    try {
      await options.onCancel(current.job_id);
    } catch (error) {
      view.setNotice(`Cancel failed: ${error instanceof Error ? error.message : error}`);
      cancel.disabled = false;
      cancel.textContent = "Cancel";
    }
  });
  remove.addEventListener("click", async () => {
    if (!current || !options.onRemove) return;
    remove.disabled = true;
    try {
      await options.onRemove(current.job_id);
    } catch (error) {
      view.setNotice(`Could not forget the job: ${error instanceof Error ? error.message : error}`);
      remove.disabled = false;
    }
  });
  const view = {
    element: root,
    get job() {
      return current;
    },
    update(job) {
      current = job;
      if (!job) {
        root.dataset.status = "unknown";
        setTicker(false);
        return;
      }
      const p = job.progress || /** @type {any} */
      {};
      const status = String(job.status || "pending");
      const running = !FINAL.has(status);
      const total = p.total;
      const processed = p.processed ?? 0;
      root.dataset.jobId = job.job_id;
      root.dataset.status = status;
      name.textContent = job.name || job.job_id;
      name.title = job.name || "";
      badge.textContent = status;
      badge.dataset.status = status;
      bar.setAttribute("aria-valuenow", String(processed));
      if (total == null) {
        bar.removeAttribute("aria-valuemax");
        bar.classList.toggle("jp-progress-indeterminate", running);
        fill.style.transform = running ? "" : "scaleX(1)";
      } else {
        bar.setAttribute("aria-valuemax", String(total));
        bar.classList.remove("jp-progress-indeterminate");
        const fraction = total > 0 ? Math.min(1, processed / total) : running ? 0 : 1;
        fill.style.transform = `scaleX(${fraction})`;
      }
      bar.setAttribute("aria-label", `${job.name || "job"}: ${summary(job)}, ${status}`);
      counts.textContent = summary(job);
      outcome.textContent = `${formatCount(p.success ?? 0)} ok \xB7 ${formatCount(p.errors ?? 0)} errors`;
      outcome.classList.toggle("jp-mod-error", (p.errors ?? 0) > 0);
      rate.textContent = formatRate(job.rate);
      eta.textContent = running && job.eta_seconds != null ? `ETA ${formatDuration(job.eta_seconds)}` : "";
      paintElapsed();
      message.textContent = job.message || "";
      message.hidden = !job.message;
      const samples = job.error_samples || [];
      const key = `${samples.length}:${p.errors ?? 0}`;
      if (key !== samplesShown) {
        samplesShown = key;
        errors.hidden = samples.length === 0;
        errorsSummary.textContent = `${formatCount(p.errors ?? samples.length)} error(s)` + (samples.length > MAX_SAMPLES_SHOWN ? ` \u2014 first ${MAX_SAMPLES_SHOWN} shown` : "");
        const items = samples.slice(0, MAX_SAMPLES_SHOWN).map((sample) => {
          const li = el(doc, "li");
          li.append(
            el(doc, "code", "jp-progress-error-item", String(sample.item ?? "")),
            el(doc, "span", "jp-progress-error-text", String(sample.error ?? ""))
          );
          return li;
        });
        errorsList.replaceChildren(...items);
      }
      cancel.hidden = !running || !options.onCancel;
      if (running && cancel.textContent !== "Cancelling\u2026") cancel.disabled = false;
      remove.hidden = running || !options.onRemove;
      setTicker(running);
    },
    setNotice(text) {
      notice.textContent = text || "";
      notice.hidden = !text;
    },
    destroy() {
      setTicker(false);
      root.remove();
    }
  };
  return view;
}
function createJobsPanel(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const root = el(doc, "div", "jp-progress-jobs-panel");
  const header = el(doc, "div", "jp-progress-jobs-header");
  const title = el(doc, "span", "jp-progress-jobs-title", options.title ?? "Jobs");
  const count = el(doc, "span", "jp-progress-jobs-count");
  header.append(title, count);
  const notice = el(doc, "div", "jp-progress-notice");
  notice.hidden = true;
  const list = el(doc, "div", "jp-progress-jobs-list");
  const empty = el(doc, "div", "jp-progress-jobs-empty", "No jobs yet.");
  root.append(header, notice, list, empty);
  container.append(root);
  const rows = /* @__PURE__ */ new Map();
  const refreshCount = () => {
    let running = 0;
    for (const { view } of rows.values()) if (view.job && !FINAL.has(view.job.status)) running++;
    count.textContent = rows.size ? `${running} running \xB7 ${rows.size} total` : "";
    root.dataset.running = String(running);
    empty.hidden = rows.size > 0;
  };
  refreshCount();
  const isOlder = (a, b) => {
    const ra = rows.get(a);
    const rb = rows.get(b);
    if (!ra || !rb) return false;
    return ra.created < rb.created || ra.created === rb.created && a < b;
  };
  const place = (id) => {
    const row = rows.get(id);
    if (!row) return;
    let before = null;
    for (const child of list.children) {
      const otherId = (
        /** @type {HTMLElement} */
        child.dataset.jobId
      );
      if (otherId && otherId !== id && isOlder(otherId, id)) {
        before = child;
        break;
      }
    }
    list.insertBefore(row.view.element, before);
  };
  return {
    element: root,
    get size() {
      return rows.size;
    },
    update(job, jobId) {
      const id = job?.job_id ?? jobId;
      if (!id) return;
      let row = rows.get(id);
      if (!job) {
        if (row) {
          row.view.destroy();
          rows.delete(id);
          refreshCount();
        }
        return;
      }
      if (!row) {
        const view = createJobView(list, options);
        row = { view, created: job.created_at || "" };
        rows.set(id, row);
        view.update(job);
        place(id);
      } else {
        row.view.update(job);
      }
      refreshCount();
    },
    setNotice(text) {
      notice.textContent = text || "";
      notice.hidden = !text;
    },
    destroy() {
      for (const { view } of rows.values()) view.destroy();
      rows.clear();
      root.remove();
    }
  };
}

// src/stream.js
var LOG_PREFIX = "[jupyter-progress]";
var API_PATH = "jupyter-progress/api/";
var POLL_INTERVAL_MS = 5e3;
var HUB_KEY = Symbol.for("jupyter-progress.stream");
var ALL = "*";
var RECONNECT_DELAYS_MS = [500, 1e3, 2e3, 4e3, 5e3];
var FINAL2 = /* @__PURE__ */ new Set(["completed", "failed", "cancelled"]);
function isFinal(job) {
  return !!job && FINAL2.has(job.status);
}
function pageConfig(doc = globalThis.document) {
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
function normalizeBase(baseUrl) {
  return baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
}
function documentCookie(name) {
  const cookies = globalThis.document?.cookie;
  if (!cookies) return null;
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}
var ProgressStream = class {
  /**
   * @param {ServerConfig} config
   * @param {Environment} [env]
   */
  constructor(config, env = {}) {
    this.baseUrl = normalizeBase(config.baseUrl);
    this.token = config.token || "";
    this.apiUrl = this.baseUrl + API_PATH;
    this.url = this.apiUrl + "events";
    const g = (
      /** @type {any} */
      globalThis
    );
    this._EventSource = env.EventSource ?? g.EventSource;
    this._fetch = env.fetch ?? ((...a) => g.fetch(...a));
    this._raf = env.requestAnimationFrame ?? (g.requestAnimationFrame ? (cb) => g.requestAnimationFrame(cb) : (cb) => g.setTimeout(cb, 16));
    this._cancelRaf = env.cancelAnimationFrame ?? (g.cancelAnimationFrame ? (h) => g.cancelAnimationFrame(h) : (h) => g.clearTimeout(h));
    this._setTimeout = env.setTimeout ?? ((cb, ms) => g.setTimeout(cb, ms));
    this._clearTimeout = env.clearTimeout ?? ((h) => g.clearTimeout(h));
    this._getCookie = env.getCookie ?? documentCookie;
    this.pollIntervalMs = env.pollIntervalMs ?? POLL_INTERVAL_MS;
    this._reconnectDelays = env.reconnectDelaysMs ?? RECONNECT_DELAYS_MS;
    this._subscribers = /* @__PURE__ */ new Map();
    this._stateListeners = /* @__PURE__ */ new Set();
    this.jobs = /* @__PURE__ */ new Map();
    this.removed = /* @__PURE__ */ new Set();
    this._dirty = /* @__PURE__ */ new Set();
    this._frame = null;
    this._source = null;
    this.lastEventId = null;
    this.state = "closed";
    this._reconnectTimer = null;
    this._pollTimer = null;
    this._failures = 0;
    this._polling = false;
    this.stats = { connects: 0, polls: 0, frames: 0, callbacks: 0 };
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
    if (!callbacks) this._subscribers.set(key, callbacks = /* @__PURE__ */ new Set());
    const entry = (job, id) => callback(job, id);
    callbacks.add(entry);
    if (key === ALL) {
      for (const id of this.jobs.keys()) this._markDirty(id);
    } else if (this.jobs.has(key) || this.removed.has(key)) {
      this._deliverSoon(key, entry);
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
    const params = (
      /** @type {Record<string, string>} */
      {}
    );
    if (this.lastEventId) params.last_event_id = this.lastEventId;
    const source = new this._EventSource(this._url(params));
    this._source = source;
    this.stats.connects += 1;
    if (this.state !== "down") this._setState("connecting");
    const onUpdate = (event) => this._onEvent(event, false);
    const onRemove = (event) => this._onEvent(event, true);
    source.addEventListener("open", () => {
      if (this._source !== source) return;
      this._failures = 0;
      this._stopPolling();
      this._setState("live");
    });
    source.addEventListener("job_updated", onUpdate);
    source.addEventListener("job_removed", onRemove);
    source.addEventListener("error", () => {
      if (this._source !== source) return;
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
    this.removed.delete(job.job_id);
    this.jobs.set(job.job_id, job);
    this._markDirty(job.job_id);
  }
  /** @param {string} jobId */
  _remove(jobId) {
    this.jobs.delete(jobId);
    this.removed.add(jobId);
    this._markDirty(jobId);
  }
  // ----- coalescing: one callback per job per animation frame -------------------------
  /** @param {string} jobId */
  _markDirty(jobId) {
    this._dirty.add(jobId);
    if (this._frame === null) this._frame = this._raf(() => this._flush());
  }
  /**
   * @param {string} jobId
   * @param {JobCallback} callback
   */
  _deliverSoon(jobId, callback) {
    this._raf(() => {
      if (!this._subscribers.get(jobId)?.has(callback)) return;
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
      for (const callbacks of [this._subscribers.get(id), all]) {
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
      if (this._subscribers.has(ALL)) {
        const body = await this._get("jobs");
        if (body && Array.isArray(body.jobs) && this.state === "down") {
          const seen = /* @__PURE__ */ new Set();
          for (const job of body.jobs) {
            seen.add(job.job_id);
            this._store(job);
          }
          for (const id of [...this.jobs.keys()]) if (!seen.has(id)) this._remove(id);
        }
      }
      const ids = [...this._subscribers.keys()].filter(
        (id) => id !== ALL && !isFinal(this.jobs.get(id)) && !this.removed.has(id)
      );
      for (const id of this._subscribers.has(ALL) ? ids.filter((i) => !this.jobs.has(i)) : ids) {
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
        cache: "no-store"
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
    const headers = {};
    if (this.token) headers.Authorization = `token ${this.token}`;
    const xsrf = this._getCookie("_xsrf");
    if (xsrf) headers["X-XSRFToken"] = xsrf;
    return headers;
  }
  // ----- commands ---------------------------------------------------------------------
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
      body: method === "POST" ? "{}" : void 0
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
    if (this._frame !== null) this._cancelRaf(this._frame);
    this._frame = null;
    this._dirty.clear();
    if (this._source) this._source.close();
    this._source = null;
    this._failures = 0;
    this._setState("closed");
  }
};
function getStream(config, env) {
  const found = config?.baseUrl != null ? (
    /** @type {ServerConfig} */
    config
  ) : pageConfig();
  if (!found) return null;
  const g = (
    /** @type {any} */
    globalThis
  );
  const hub = g[HUB_KEY] ?? (g[HUB_KEY] = /* @__PURE__ */ new Map());
  const stream = new ProgressStream(found, env);
  const key = stream._url();
  const existing = hub.get(key);
  if (existing) return existing;
  hub.set(key, stream);
  return stream;
}

// src/widget.js
var NO_SERVER_NOTICE = "No jupyter-progress server is reachable from this page (VS Code, Colab or a static viewer?): showing the state synced from the kernel.";
var STREAM_DOWN_NOTICE = "Live updates interrupted: reconnecting, and checking every 5 s meanwhile.";
function pickJob(fromStream, fromKernel) {
  if (!fromStream) return fromKernel;
  if (!fromKernel || fromKernel.job_id !== fromStream.job_id) return fromStream;
  if (isFinal(fromStream)) return fromStream;
  if (isFinal(fromKernel)) return fromKernel;
  const kernelDone = fromKernel.progress?.processed ?? 0;
  return kernelDone > (fromStream.progress?.processed ?? 0) ? fromKernel : fromStream;
}
function kernelJob(model) {
  const job = model.get("job");
  return job && typeof job === "object" && typeof job.job_id === "string" ? job : null;
}
function renderJob({ model, el: el2 }) {
  const jobId = String(model.get("job_id"));
  const stream = getStream();
  const view = createJobView(el2, {
    onCancel: stream ? (id) => stream.cancel(id) : void 0
  });
  view.element.dataset.jobId = jobId;
  let fromStream = null;
  const paint = () => {
    const job = pickJob(fromStream, kernelJob(model));
    view.update(
      job ?? {
        job_id: jobId,
        name: `job ${jobId.slice(0, 8)}`,
        status: "pending",
        progress: { processed: 0, total: null, success: 0, errors: 0, percentage: null }
      }
    );
  };
  model.on("change:job", paint);
  const cleanups = [() => model.off("change:job", paint)];
  if (stream) {
    cleanups.push(
      stream.subscribeJob(jobId, (job) => {
        fromStream = job;
        paint();
      }),
      stream.onState((state) => view.setNotice(state === "down" ? STREAM_DOWN_NOTICE : ""))
    );
  } else {
    view.setNotice(NO_SERVER_NOTICE);
  }
  paint();
  return () => {
    for (const cleanup of cleanups) cleanup();
    view.destroy();
  };
}
function renderPanel({ el: el2 }) {
  const stream = getStream();
  const panel = createJobsPanel(el2, {
    onCancel: stream ? (id) => stream.cancel(id) : void 0,
    onRemove: stream ? (id) => stream.remove(id) : void 0
  });
  const cleanups = [];
  if (stream) {
    cleanups.push(
      stream.subscribeAll((job, id) => panel.update(job, id)),
      stream.onState((state) => panel.setNotice(state === "down" ? STREAM_DOWN_NOTICE : ""))
    );
  } else {
    panel.setNotice(
      "No jupyter-progress server is reachable from this page (VS Code, Colab or a static viewer?): the jobs panel needs one."
    );
  }
  return () => {
    for (const cleanup of cleanups) cleanup();
    panel.destroy();
  };
}
var widget_default = {
  /** @param {{model: any}} _context */
  initialize(_context) {
    return () => {
    };
  },
  /** @param {{model: any, el: HTMLElement}} context */
  render(context) {
    context.el.classList.add("jp-progress-host");
    return context.model.get("job_id") ? renderJob(context) : renderPanel(context);
  }
};
export {
  NO_SERVER_NOTICE,
  STREAM_DOWN_NOTICE,
  widget_default as default,
  pickJob
};
