// DOM rendering of jobs: one job's progress view, and the list of every job.
//
// Text only: every value from a job goes through textContent or an attribute, never
// innerHTML, so names, messages and errors can never become markup. No anywidget or
// JupyterLab specifics: the lab extension imports this module too.

import { isFinal, LOG_PREFIX, STREAM_DOWN_NOTICE } from "./contract.js";

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
 * A JupyterLab-styled button that submits nothing.
 * @param {Document} doc
 * @param {string} className
 * @param {string} label
 * @param {string} [title]
 */
function button(doc, className, label, title) {
  const node = el(doc, "button", `${className} jp-mod-styled`, label);
  node.type = "button";
  if (title) node.title = title;
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
  const cancel = button(doc, "jp-progress-cancel", "Cancel", "Ask the server to cancel this job");
  const remove = button(doc, "jp-progress-remove", "×", "Forget this finished job");
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
 * The one list of jobs, used by both the anywidget `JobsPanel` and the JupyterLab side
 * panel; the options add what one of them shows and the other does not.
 * @typedef {{
 *   className: string,
 *   label: string,
 *   update: (button: HTMLButtonElement, job: Job) => void,
 *   run: (job: Job) => unknown,
 * }} RowAction
 *   A button under a job's view: `update` sets it up for the job's latest state (its
 *   `hidden`, `title`, data attributes), `run` acts on a click.
 * @typedef {[value: string, label: string, test: (job: Job) => boolean]} JobFilter
 * @typedef {ViewOptions & {
 *   title?: string,
 *   stream?: import("./stream.js").ProgressStream | null,
 *   filters?: JobFilter[],
 *   deleteFinished?: boolean,
 *   rowActions?: RowAction[],
 * }} JobsPanelOptions
 *   `stream`: follow every job of it, cancel and forget through it, show its outages.
 *   `filters`: a status select in the toolbar (the first one is the default).
 *   `deleteFinished`: a toolbar button that forgets every finished job listed.
 * @typedef {{
 *   element: HTMLElement,
 *   update: (job: Job | null, jobId?: string) => void,
 *   setNotice: (text: string) => void,
 *   setFilter: (value: string) => void,
 *   deleteFinished: () => Promise<void>,
 *   destroy: () => void,
 *   readonly filter: string,
 *   readonly size: number,
 * }} JobsPanel
 */

/**
 * The list of jobs, newest first, one job view per job, in a row of its own
 * (`.jp-progress-jobs-row`, where the row actions go). `update(job)` adds or repaints a
 * job; `update(null, jobId)` removes it. A row is shown when it matches the filter; the
 * count and the empty state follow.
 * @param {HTMLElement} container
 * @param {JobsPanelOptions} [options]
 * @returns {JobsPanel}
 */
export function createJobsPanel(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const stream = options.stream ?? null;
  /** @type {ViewOptions} */
  const viewOptions = {
    document: doc,
    tickMs: options.tickMs,
    onCancel: options.onCancel ?? (stream ? (id) => stream.cancel(id) : undefined),
    onRemove: options.onRemove ?? (stream ? (id) => stream.remove(id) : undefined),
  };
  const filters = options.filters ?? [];
  const rowActions = options.rowActions ?? [];

  const root = el(doc, "div", "jp-progress-jobs-panel");
  const header = el(doc, "div", "jp-progress-jobs-header");
  const title = el(doc, "span", "jp-progress-jobs-title", options.title ?? "Jobs");
  const count = el(doc, "span", "jp-progress-jobs-count");
  header.append(title, count);

  const toolbar = el(doc, "div", "jp-progress-jobs-toolbar");
  const select = el(doc, "select", "jp-progress-jobs-filter jp-mod-styled");
  select.setAttribute("aria-label", "Show jobs by status");
  for (const [value, label] of filters) {
    const option = el(doc, "option", undefined, label);
    option.value = value;
    select.append(option);
  }
  select.addEventListener("change", () => panel.setFilter(select.value));
  const clear = button(
    doc,
    "jp-progress-jobs-clear",
    "Delete finished",
    "Forget every finished job on the server"
  );
  clear.addEventListener("click", () => void panel.deleteFinished());
  if (filters.length) toolbar.append(select);
  if (options.deleteFinished) toolbar.append(clear);

  const notice = el(doc, "div", "jp-progress-notice");
  notice.hidden = true;
  const list = el(doc, "div", "jp-progress-jobs-list");
  const empty = el(doc, "div", "jp-progress-jobs-empty");
  root.append(header);
  if (toolbar.childElementCount) root.append(toolbar);
  root.append(notice, list, empty);
  container.append(root);

  /** @type {Map<string, {row: HTMLElement, view: JobView, buttons: HTMLButtonElement[]}>} */
  const rows = new Map();
  let filter = filters[0];
  if (filter) root.dataset.filter = filter[0];

  /** @param {Job} job */
  const matches = (job) => !filter || filter[2](job);

  const refresh = () => {
    let running = 0;
    let finished = 0;
    let shown = 0;
    for (const { row, view } of rows.values()) {
      if (isFinal(view.job)) finished++;
      else running++;
      if (!row.hidden) shown++;
    }
    count.textContent = rows.size ? `${running} running · ${rows.size} total` : "";
    root.dataset.running = String(running);
    clear.disabled = finished === 0 || !viewOptions.onRemove;
    empty.textContent = rows.size ? "No job matches this filter." : "No jobs yet.";
    empty.hidden = shown > 0;
  };

  /** Newest first: created_at descending (ISO times sort as strings), then id descending. */
  const place = (/** @type {HTMLElement} */ row) => {
    const created = row.dataset.created ?? "";
    const id = row.dataset.jobId ?? "";
    let before = null;
    for (const child of list.children) {
      const other = /** @type {HTMLElement} */ (child);
      const otherCreated = other.dataset.created ?? "";
      const otherId = other.dataset.jobId ?? "";
      if (otherCreated < created || (otherCreated === created && otherId < id)) {
        before = other;
        break;
      }
    }
    list.insertBefore(row, before);
  };

  /** @param {Job} job */
  const createRow = (job) => {
    const row = el(doc, "div", "jp-progress-jobs-row");
    row.dataset.jobId = job.job_id;
    row.dataset.created = job.created_at ?? "";
    const view = createJobView(row, viewOptions);
    /** @type {HTMLButtonElement[]} */
    const buttons = [];
    if (rowActions.length) {
      const actions = el(doc, "div", "jp-progress-jobs-actions");
      for (const action of rowActions) {
        const node = button(doc, action.className, action.label);
        node.addEventListener("click", () => {
          if (view.job) action.run(view.job);
        });
        buttons.push(node);
      }
      actions.append(...buttons);
      row.append(actions);
    }
    return { row, view, buttons };
  };

  /** @type {JobsPanel} */
  const panel = {
    element: root,
    get size() {
      return rows.size;
    },
    get filter() {
      return filter?.[0] ?? "";
    },
    update(job, jobId) {
      const id = job?.job_id ?? jobId;
      if (!id) return;
      let entry = rows.get(id);
      if (!job) {
        if (entry) {
          entry.view.destroy();
          entry.row.remove();
          rows.delete(id);
          refresh();
        }
        return;
      }
      if (!entry) {
        entry = createRow(job);
        rows.set(id, entry);
        entry.view.update(job);
        place(entry.row);
      } else {
        entry.view.update(job);
      }
      entry.row.dataset.status = job.status;
      entry.buttons.forEach((node, index) => rowActions[index].update(node, job));
      entry.row.hidden = !matches(job);
      refresh();
    },
    setFilter(value) {
      if (!filters.length) return;
      filter = filters.find(([v]) => v === value) ?? filters[0];
      select.value = filter[0];
      root.dataset.filter = filter[0];
      for (const { row, view } of rows.values()) row.hidden = !!view.job && !matches(view.job);
      refresh();
    },
    setNotice(text) {
      notice.textContent = text || "";
      notice.hidden = !text;
    },
    async deleteFinished() {
      const remove = viewOptions.onRemove;
      if (!remove) return;
      const ids = [...rows.values()]
        .map(({ view }) => view.job)
        .filter((job) => isFinal(job))
        .map((job) => /** @type {Job} */ (job).job_id);
      let failures = 0;
      for (const id of ids) {
        try {
          await remove(id);
        } catch (error) {
          failures++;
          console.warn(LOG_PREFIX, "could not delete job", id, error);
        }
      }
      panel.setNotice(failures ? `Could not delete ${failures} job(s).` : "");
    },
    destroy() {
      for (const cleanup of cleanups.splice(0)) cleanup();
      for (const { view } of rows.values()) view.destroy();
      rows.clear();
      root.remove();
    },
  };

  /** @type {Array<() => void>} */
  const cleanups = [];
  if (stream) {
    const showState = (/** @type {string} */ state) =>
      panel.setNotice(state === "down" ? STREAM_DOWN_NOTICE : "");
    cleanups.push(
      stream.subscribeAll((job, id) => panel.update(job, id)),
      stream.onState(showState)
    );
    if (stream.state === "down") showState(stream.state);
  }
  refresh();
  return panel;
}
