// DOM rendering of jobs: one job's progress view, and the list of every job.
//
// Text only: every value from a job goes through textContent or an attribute, never
// innerHTML, so names, messages and errors can never become markup. No anywidget or
// JupyterLab specifics: the lab extension imports this module too.

import { isFinal } from "./contract.js";

/** @typedef {import("./contract.js").Job} Job */

const MAX_SAMPLES_SHOWN = 5;

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {Document} doc
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Every running view's elapsed-time painter: one timer per page repaints them together
 * (on globalThis, as anywidget loads one copy of this module per widget).
 * @type {{paints: Set<() => void>, timer: any}}
 */
const ticker = /** @type {any} */ (globalThis)[Symbol.for("jupyter-progress.ticker")] ??= {
  paints: new Set(),
  timer: null,
};

/** @param {number} ms */
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

/** @param {number} n */
export function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "?";
}

/** @param {number | null | undefined} seconds */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

/** @param {number | null | undefined} rate */
export function formatRate(rate) {
  if (rate == null || !Number.isFinite(rate) || rate <= 0) return "";
  if (rate >= 100) return `${Math.round(rate).toLocaleString("en-US")} items/s`;
  if (rate >= 1) return `${rate.toFixed(1)} items/s`;
  return `${(60 * rate).toFixed(1)} items/min`;
}

/** @param {string | null | undefined} iso */
function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
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

/**
 * The one-line summary used in text and aria labels, e.g. "50 / 100 (50.0%)".
 * @param {Job} job
 */
export function summary(job) {
  const p = job.progress || /** @type {any} */ ({});
  const processed = formatCount(p.processed ?? 0);
  if (p.total == null) return `${processed} items`;
  const pct = p.percentage ?? (p.total ? (100 * (p.processed ?? 0)) / p.total : 0);
  return `${processed} / ${formatCount(p.total)} (${Number(pct).toFixed(1)}%)`;
}

/**
 * @typedef {{
 *   onCancel?: (jobId: string) => Promise<unknown> | void,
 *   onRemove?: (jobId: string) => Promise<unknown> | void,
 *   document?: Document,
 *   tickMs?: number,
 * }} ViewOptions
 * @typedef {{
 *   element: HTMLElement,
 *   update: (job: Job | null) => void,
 *   setNotice: (text: string) => void,
 *   destroy: () => void,
 *   readonly job: Job | null,
 * }} JobView
 */

/**
 * Render one job into `container`. `update(job)` repaints; a running job's elapsed time
 * ticks once a second; `destroy()` removes the element and stops the timer.
 * @param {HTMLElement} container
 * @param {ViewOptions} [options]
 * @returns {JobView}
 */
export function createJobView(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const root = el(doc, "div", "jp-progress-widget");
  root.dataset.status = "pending";

  const header = el(doc, "div", "jp-progress-header");
  const name = el(doc, "span", "jp-progress-name");
  const badge = el(doc, "span", "jp-progress-badge");
  const cancel = el(doc, "button", "jp-progress-cancel jp-mod-styled", "Cancel");
  cancel.type = "button";
  cancel.title = "Ask the server to cancel this job";
  const remove = el(doc, "button", "jp-progress-remove jp-mod-styled", "×");
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

  /** @type {Job | null} */
  let current = null;
  let samplesShown = "";

  const paintElapsed = () => {
    elapsed.textContent = current ? `elapsed ${formatDuration(elapsedSeconds(current))}` : "";
  };
  const setTicker = (/** @type {boolean} */ on) => {
    if (on) ticker.paints.add(paintElapsed);
    else ticker.paints.delete(paintElapsed);
    syncTicker(options.tickMs ?? 1000);
  };

  cancel.addEventListener("click", async () => {
    if (!current || !options.onCancel) return;
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
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

  /** @type {JobView} */
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
      const p = job.progress || /** @type {any} */ ({});
      const status = String(job.status || "pending");
      const running = !isFinal(job);
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
      outcome.textContent = `${formatCount(p.success ?? 0)} ok · ${formatCount(p.errors ?? 0)} errors`;
      outcome.classList.toggle("jp-mod-error", (p.errors ?? 0) > 0);
      rate.textContent = formatRate(job.rate);
      eta.textContent =
        running && job.eta_seconds != null ? `ETA ${formatDuration(job.eta_seconds)}` : "";
      paintElapsed();
      message.textContent = job.message || "";
      message.hidden = !job.message;

      const samples = job.error_samples || [];
      const key = `${samples.length}:${p.errors ?? 0}`;
      if (key !== samplesShown) {
        samplesShown = key;
        errors.hidden = samples.length === 0;
        errorsSummary.textContent =
          `${formatCount(p.errors ?? samples.length)} error(s)` +
          (samples.length > MAX_SAMPLES_SHOWN ? ` — first ${MAX_SAMPLES_SHOWN} shown` : "");
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
      if (running && cancel.textContent !== "Cancelling…") cancel.disabled = false;
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
    },
  };
  return view;
}

/**
 * @typedef {{
 *   element: HTMLElement,
 *   update: (job: Job | null, jobId?: string) => void,
 *   setNotice: (text: string) => void,
 *   destroy: () => void,
 *   readonly size: number,
 * }} JobsPanel
 */

/**
 * The list of every job, newest first, one job view per job.
 * `update(job)` adds or repaints a job; `update(null, jobId)` removes it.
 * @param {HTMLElement} container
 * @param {ViewOptions & {title?: string}} [options]
 * @returns {JobsPanel}
 */
export function createJobsPanel(container, options = {}) {
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

  /** @type {Map<string, {view: JobView, created: string}>} */
  const rows = new Map();

  const refreshCount = () => {
    let running = 0;
    for (const { view } of rows.values()) if (view.job && !isFinal(view.job)) running++;
    count.textContent = rows.size ? `${running} running · ${rows.size} total` : "";
    root.dataset.running = String(running);
    empty.hidden = rows.size > 0;
  };
  refreshCount();

  /** Newest first: created_at descending (ISO strings sort as times), then id. */
  const isOlder = (/** @type {string} */ a, /** @type {string} */ b) => {
    const ra = rows.get(a);
    const rb = rows.get(b);
    if (!ra || !rb) return false;
    return ra.created < rb.created || (ra.created === rb.created && a < b);
  };
  const place = (/** @type {string} */ id) => {
    const row = rows.get(id);
    if (!row) return;
    let before = null;
    for (const child of list.children) {
      const otherId = /** @type {HTMLElement} */ (child).dataset.jobId;
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
    },
  };
}
