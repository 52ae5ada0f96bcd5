// DOM rendering of jobs: one job's progress view (compact: a tqdm-high line and a detail
// line, the rest expandable), its children's rows, and the list of every job.
//
// Text only: every value from a job goes through textContent or an attribute, never
// innerHTML, so names, messages, errors and logs can never become markup. No anywidget
// or JupyterLab specifics: the lab extension imports this module too.

import { isFinal, LOG_PREFIX, STREAM_DOWN_NOTICE } from "./contract.js";
import {
  elapsedSeconds,
  formatAge,
  formatAmount,
  formatCount,
  formatCounts,
  formatDuration,
  formatRate,
} from "./format.js";
import { compareJobs, JobHistory, JOB_FILTERS, matchesQuery } from "./history.js";
import { PAGE_SIZE } from "./stream.js";

export { elapsedSeconds, formatCount, formatDuration, formatRate } from "./format.js";

/** @typedef {import("./contract.js").Job} Job */
/** @typedef {import("./stream.js").ProgressStream} ProgressStream */
/** @typedef {import("./history.js").JobFilter} JobFilter */

const MAX_SAMPLES_SHOWN = 5;
/** Child rows shown under one job (running first, then the newest); the rest are counted. */
export const MAX_CHILDREN_SHOWN = 8;
/** Nesting shown: children, and their children. */
const MAX_CHILD_DEPTH = 2;
/** The server's largest page (`GET jobs?limit=`). */
const MAX_PAGE = 1000;
/** How often the list repaints "5m ago". */
const AGE_REPAINT_MS = 30_000;

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

/** @param {unknown} error */
function errorText(error) {
  return error instanceof Error ? error.message : String(error);
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

/**
 * The one-line summary used in text and aria labels, e.g. "50 / 100 (50.0%)".
 * @param {Job} job
 */
export function summary(job) {
  return formatCounts(job);
}

/**
 * The short counts of a bar's line, as tqdm's "50/100": "50/100", "1.23M/4.00M", "7".
 * @param {Job} job
 */
export function briefCounts(job) {
  const p = job.progress || /** @type {any} */ ({});
  const done = formatAmount(p.processed ?? 0, job);
  return p.total == null ? done : `${done}/${formatAmount(p.total, job)}`;
}

/**
 * A notebook job's running cell: its title and the tail of what it printed.
 * @param {Job} job
 * @returns {{title: string, cell: string, log: string}}
 */
export function notebookDetails(job) {
  const details = /** @type {Record<string, unknown>} */ (job.details ?? {});
  const title = typeof details.cell_title === "string" ? details.cell_title : "";
  const log = typeof details.log_tail === "string" ? details.log_tail : "";
  const index = typeof details.cell === "number" ? details.cell : null;
  const count = typeof details.cell_count === "number" ? details.cell_count : null;
  const cell = index === null ? "" : `cell ${index + 1}${count === null ? "" : ` of ${count}`}`;
  return { title, cell, log };
}

/**
 * Paint a bar element (`role=progressbar`) and its fill for a job.
 * @param {HTMLElement} bar
 * @param {HTMLElement} fill
 * @param {Job} job
 */
function paintBar(bar, fill, job) {
  const p = job.progress || /** @type {any} */ ({});
  const running = !isFinal(job);
  const processed = p.processed ?? 0;
  bar.setAttribute("aria-valuenow", String(processed));
  if (p.total == null) {
    bar.removeAttribute("aria-valuemax");
    bar.classList.toggle("jp-progress-indeterminate", running);
    fill.style.transform = running ? "" : "scaleX(1)";
  } else {
    bar.setAttribute("aria-valuemax", String(p.total));
    bar.classList.remove("jp-progress-indeterminate");
    const fraction = p.total > 0 ? Math.min(1, processed / p.total) : running ? 0 : 1;
    fill.style.transform = `scaleX(${fraction})`;
  }
  bar.setAttribute("aria-label", `${job.name || "job"}: ${summary(job)}, ${job.status}`);
}

/** @param {Document} doc */
function createBar(doc) {
  const bar = el(doc, "div", "jp-progress-bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuenow", "0");
  const fill = el(doc, "div", "jp-progress-fill");
  bar.append(fill);
  return { bar, fill };
}

// ----- child rows ------------------------------------------------------------------------

/**
 * @typedef {{
 *   element: HTMLElement,
 *   destroy: () => void,
 *   readonly size: number,
 * }} ChildList
 */

/**
 * Show `shown` as the rows of `container`, in that order: drop the rows of jobs no longer
 * shown, build the missing ones, and move only the rows that are out of place (a keyed
 * list, so a live update never rebuilds the rows around it).
 * @template {{row: Element}} E
 * @param {Element} container
 * @param {Map<string, E>} rows  by job id; kept in step with the DOM
 * @param {Job[]} shown
 * @param {{create: (job: Job) => E, destroy: (entry: E) => void,
 *   paint?: (entry: E, job: Job, fresh: boolean) => unknown}} hooks
 */
function syncRows(container, rows, shown, hooks) {
  const ids = new Set(shown.map((job) => job.job_id));
  for (const [id, entry] of [...rows]) {
    if (!ids.has(id)) {
      hooks.destroy(entry);
      entry.row.remove();
      rows.delete(id);
    }
  }
  /** @type {Element | null} */
  let previous = null;
  for (const job of shown) {
    let entry = rows.get(job.job_id);
    const fresh = entry === undefined;
    if (entry === undefined) {
      entry = hooks.create(job);
      rows.set(job.job_id, entry);
    }
    hooks.paint?.(entry, job, fresh);
    /** @type {ChildNode | null} */
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (entry.row !== expected) container.insertBefore(entry.row, expected);
    previous = entry.row;
  }
}

/**
 * The compact rows of a job's children (`.jp-progress-child`, each with its own
 * progress bar), live from the page's stream: a row rises when a child starts, follows
 * it, and goes away when the child is removed (a `leave=false` bar that completed).
 * Running children first, then the newest; the rest are counted, not drawn.
 * @param {Document} doc
 * @param {ProgressStream} stream
 * @param {string} parentId
 * @param {number} [depth]
 * @returns {ChildList}
 */
export function createChildList(doc, stream, parentId, depth = 1) {
  const element = el(doc, "div", "jp-progress-children");
  element.setAttribute("role", "group");
  element.setAttribute("aria-label", "Inner progress bars");
  element.hidden = true;
  const more = el(doc, "div", "jp-progress-children-more");
  /** @type {Map<string, Job>} */
  const children = new Map();
  /** @type {Map<string, {row: HTMLElement, paint: (job: Job) => void, destroy: () => void}>} */
  const rows = new Map();
  let scheduled = false;

  /** @param {Job} job */
  const createRow = (job) => {
    const row = el(doc, "div", "jp-progress-child");
    row.dataset.jobId = job.job_id;
    const line = el(doc, "div", "jp-progress-child-line");
    const name = el(doc, "span", "jp-progress-child-name");
    const { bar, fill } = createBar(doc);
    const text = el(doc, "span", "jp-progress-child-text");
    line.append(name, bar, text);
    row.append(line);
    const nested = depth < MAX_CHILD_DEPTH ? createChildList(doc, stream, job.job_id, depth + 1) : null;
    if (nested) row.append(nested.element);
    /** @param {Job} child */
    const paint = (child) => {
      row.dataset.status = child.status;
      name.textContent = child.name || child.job_id.slice(0, 8);
      name.title = child.name || "";
      paintBar(bar, fill, child);
      const parts = [briefCounts(child)];
      const p = child.progress || /** @type {any} */ ({});
      if (p.total != null && p.percentage != null) parts[0] += ` ${Math.round(p.percentage)}%`;
      const rate = formatRate(child.rate, child);
      if (rate && !isFinal(child)) parts.push(rate);
      if (child.postfix) parts.push(child.postfix);
      if (isFinal(child) && child.status !== "completed") parts.push(child.status);
      text.textContent = parts.join(" · ");
    };
    return { row, paint, destroy: () => nested?.destroy() };
  };

  const render = () => {
    scheduled = false;
    const ordered = [...children.values()]
      // tqdm clears a leave=False bar once it is done; the server removes it next.
      .filter((job) => !(job.leave === false && job.status === "completed"))
      .sort(compareJobs);
    const shown = ordered.slice(0, MAX_CHILDREN_SHOWN);
    syncRows(element, rows, shown, {
      create: createRow,
      destroy: (entry) => entry.destroy(),
      paint: (entry, job) => entry.paint(job),
    });
    const hiddenCount = ordered.length - shown.length;
    more.textContent = hiddenCount > 0 ? `+ ${formatCount(hiddenCount)} more` : "";
    if (hiddenCount > 0) element.append(more);
    else more.remove();
    element.hidden = shown.length === 0;
  };

  const unsubscribe = stream.subscribeChildren(parentId, (job, id) => {
    const before = children.get(id);
    if (job) children.set(id, job);
    else children.delete(id);
    const entry = rows.get(id);
    // A running child that stays running keeps its place: repaint it alone.
    if (job && before && entry && isFinal(before) === isFinal(job) && job.leave !== false) {
      entry.paint(job);
    } else if (!scheduled) {
      scheduled = true;
      queueMicrotask(render);
    }
  });

  return {
    element,
    get size() {
      return rows.size;
    },
    destroy() {
      unsubscribe();
      for (const entry of rows.values()) entry.destroy();
      rows.clear();
      element.remove();
    },
  };
}

// ----- one job's view --------------------------------------------------------------------

/**
 * @typedef {{
 *   onCancel?: (jobId: string) => Promise<unknown> | void,
 *   onRemove?: (jobId: string) => Promise<unknown> | void,
 *   document?: Document,
 *   tickMs?: number,
 *   stream?: ProgressStream | null,
 *   expandable?: boolean,
 *   onExpand?: (expanded: boolean) => void,
 * }} ViewOptions
 *   `stream`: the page's stream, for the job's child rows. `expandable`: a compact row
 *   (the jobs list's): the line only, the rest built on the first expansion.
 * @typedef {{
 *   element: HTMLElement,
 *   update: (job: Job | null) => void,
 *   setNotice: (text: string) => void,
 *   setExpanded: (expanded: boolean) => void,
 *   repaintAge: () => void,
 *   destroy: () => void,
 *   readonly job: Job | null,
 *   readonly expanded: boolean,
 *   readonly toggle: HTMLButtonElement | null,
 * }} JobView
 */

let viewCounter = 0;

/**
 * Render one job into `container`. `update(job)` repaints; a running job's elapsed time
 * ticks once a second; `destroy()` removes the element and stops the timer.
 *
 * The look is tqdm's height: a line (name, bar, counts, status, Cancel) and a detail
 * line (counts, outcome, rate with unit, ETA, elapsed, postfix); a notebook job's cell,
 * the message, error samples and the log tail expand; child bars are rows below.
 * @param {HTMLElement} container
 * @param {ViewOptions} [options]
 * @returns {JobView}
 */
export function createJobView(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const expandable = !!options.expandable;
  const stream = options.stream ?? null;
  const root = el(doc, "div", "jp-progress-widget");
  root.dataset.status = "pending";
  root.classList.toggle("jp-mod-expandable", expandable);

  const line = el(doc, "div", "jp-progress-line");
  /** @type {HTMLButtonElement | null} */
  let toggle = null;
  const bodyId = `jp-progress-body-${++viewCounter}`;
  if (expandable) {
    toggle = button(doc, "jp-progress-toggle", "");
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", bodyId);
    line.append(toggle);
  }
  const name = el(doc, "span", "jp-progress-name");
  const { bar, fill } = createBar(doc);
  const brief = el(doc, "span", "jp-progress-brief");
  const badge = el(doc, "span", "jp-progress-badge");
  const age = el(doc, "span", "jp-progress-age");
  const cancel = button(doc, "jp-progress-cancel", "Cancel", "Ask the server to cancel this job");
  const remove = button(doc, "jp-progress-remove", "×", "Forget this finished job");
  remove.setAttribute("aria-label", "Forget this finished job");
  remove.hidden = true;
  line.append(name, bar, brief, badge);
  if (expandable) line.append(age);
  line.append(cancel, remove);
  const notice = el(doc, "div", "jp-progress-notice");
  notice.hidden = true;
  root.append(line);

  /** @typedef {{
   *   body: HTMLElement, counts: HTMLElement, outcome: HTMLElement, rate: HTMLElement,
   *   eta: HTMLElement, elapsed: HTMLElement, postfix: HTMLElement, cell: HTMLElement,
   *   message: HTMLElement, errors: HTMLDetailsElement, errorsSummary: HTMLElement,
   *   errorsList: HTMLElement, log: HTMLDetailsElement, logSummary: HTMLElement,
   *   logText: HTMLElement, children: ChildList | null,
   * }} Body */
  /** @type {Body | null} */
  let body = null;
  let samplesShown = "";
  let expanded = !expandable;

  const buildBody = () => {
    const element = el(doc, "div", "jp-progress-body");
    element.id = bodyId;
    const stats = el(doc, "div", "jp-progress-stats");
    const parts = {
      counts: el(doc, "span", "jp-progress-counts"),
      outcome: el(doc, "span", "jp-progress-outcome"),
      rate: el(doc, "span", "jp-progress-rate"),
      eta: el(doc, "span", "jp-progress-eta"),
      elapsed: el(doc, "span", "jp-progress-elapsed"),
      postfix: el(doc, "span", "jp-progress-postfix"),
    };
    stats.append(...Object.values(parts));
    const cell = el(doc, "div", "jp-progress-cell");
    const message = el(doc, "div", "jp-progress-message");
    message.title = "Click to show all of it";
    message.addEventListener("click", () => message.classList.toggle("jp-mod-expanded"));
    const errors = el(doc, "details", "jp-progress-errors");
    const errorsSummary = el(doc, "summary");
    const errorsList = el(doc, "ul");
    errors.append(errorsSummary, errorsList);
    errors.hidden = true;
    const log = el(doc, "details", "jp-progress-log");
    const logSummary = el(doc, "summary", undefined, "Output of the running cell");
    const logText = el(doc, "pre", "jp-progress-log-tail");
    log.append(logSummary, logText);
    log.hidden = true;
    element.append(stats, cell, message, errors, log);
    let children = null;
    if (stream && current) {
      children = createChildList(doc, stream, current.job_id);
      element.append(children.element);
    }
    root.insertBefore(element, notice.parentNode === root ? notice : null);
    samplesShown = "";
    body = { body: element, ...parts, cell, message, errors, errorsSummary, errorsList, log, logSummary, logText, children };
  };

  root.append(notice);
  container.append(root);

  /** @type {Job | null} */
  let current = null;

  const paintElapsed = () => {
    if (!current) return;
    const seconds = formatDuration(elapsedSeconds(current));
    if (body) body.elapsed.textContent = seconds ? `elapsed ${seconds}` : "";
    if (expandable) {
      age.textContent = isFinal(current)
        ? formatAge(current.finished_at ?? current.created_at)
        : seconds;
    }
  };
  const setTicker = (/** @type {boolean} */ on) => {
    if (on) ticker.paints.add(paintElapsed);
    else ticker.paints.delete(paintElapsed);
    syncTicker(options.tickMs ?? 1000);
  };

  cancel.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (!current || !options.onCancel) return;
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
    try {
      await options.onCancel(current.job_id);
    } catch (error) {
      view.setNotice(`Cancel failed: ${errorText(error)}`);
      cancel.disabled = false;
      cancel.textContent = "Cancel";
    }
  });
  remove.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (!current || !options.onRemove) return;
    remove.disabled = true;
    try {
      await options.onRemove(current.job_id);
    } catch (error) {
      view.setNotice(`Could not forget the job: ${errorText(error)}`);
      remove.disabled = false;
    }
  });
  if (toggle) {
    const flip = () => view.setExpanded(!expanded);
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      flip();
    });
    line.addEventListener("click", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      if (!target.closest("button")) flip();
    });
  }

  const paintBody = () => {
    const job = current;
    if (!body || !job) return;
    const p = job.progress || /** @type {any} */ ({});
    const running = !isFinal(job);
    body.counts.textContent = summary(job);
    body.outcome.textContent = `${formatCount(p.success ?? 0)} ok · ${formatCount(p.errors ?? 0)} errors`;
    body.outcome.classList.toggle("jp-mod-error", (p.errors ?? 0) > 0);
    body.rate.textContent = formatRate(job.rate, job);
    body.eta.textContent =
      running && job.eta_seconds != null ? `ETA ${formatDuration(job.eta_seconds)}` : "";
    body.postfix.textContent = job.postfix || "";
    body.postfix.title = job.postfix || "";
    const nb = notebookDetails(job);
    body.cell.textContent = [nb.cell, nb.title].filter(Boolean).join(": ");
    body.cell.hidden = !body.cell.textContent;
    body.message.textContent = job.message || "";
    body.message.hidden = !job.message;
    body.log.hidden = !nb.log;
    if (body.logText.textContent !== nb.log) {
      const text = body.logText;
      const atEnd = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.textContent = nb.log;
      if (atEnd) text.scrollTop = text.scrollHeight;
    }
    body.logSummary.textContent = running ? "Output of the running cell" : "Output of the last cell";

    const samples = job.error_samples || [];
    const key = `${samples.length}:${p.errors ?? 0}`;
    if (key !== samplesShown) {
      samplesShown = key;
      body.errors.hidden = samples.length === 0;
      body.errorsSummary.textContent =
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
      body.errorsList.replaceChildren(...items);
    }
  };

  /** @type {JobView} */
  const view = {
    element: root,
    get job() {
      return current;
    },
    get expanded() {
      return expanded;
    },
    get toggle() {
      return toggle;
    },
    update(job) {
      const previous = current;
      current = job;
      if (!job) {
        root.dataset.status = "unknown";
        setTicker(false);
        return;
      }
      const status = String(job.status || "pending");
      const running = !isFinal(job);
      if (body?.children && previous && previous.job_id !== job.job_id) {
        body.children.destroy();
        body.children = null;
      }
      root.dataset.jobId = job.job_id;
      root.dataset.status = status;
      name.textContent = job.name || job.job_id;
      name.title = job.name || "";
      badge.textContent = status;
      badge.dataset.status = status;
      paintBar(bar, fill, job);
      brief.textContent = briefCounts(job);
      if (toggle) toggle.setAttribute("aria-label", `Details of ${job.name || "job"}`);
      if (expanded && !body) buildBody();
      if (body && !body.children && stream) {
        body.children = createChildList(doc, stream, job.job_id);
        body.body.append(body.children.element);
      }
      paintBody();
      paintElapsed();

      cancel.hidden = !running || !options.onCancel;
      if (running && cancel.textContent !== "Cancelling…") cancel.disabled = false;
      remove.hidden = running || !options.onRemove;
      setTicker(running);
    },
    setExpanded(open) {
      if (!expandable || open === expanded) return;
      expanded = open;
      root.classList.toggle("jp-mod-expanded", open);
      toggle?.setAttribute("aria-expanded", String(open));
      if (open && !body && current) {
        buildBody();
        paintBody();
        paintElapsed();
      }
      if (body) body.body.hidden = !open;
      options.onExpand?.(open);
    },
    repaintAge() {
      paintElapsed();
    },
    setNotice(text) {
      notice.textContent = text || "";
      notice.hidden = !text;
    },
    destroy() {
      setTicker(false);
      body?.children?.destroy();
      root.remove();
    },
  };
  return view;
}

// ----- the jobs list ---------------------------------------------------------------------

/**
 * The one list of jobs, used by both the anywidget `JobsPanel` and the JupyterLab side
 * panel; the options add what one of them shows and the other does not.
 * @typedef {{
 *   className: string,
 *   label: string,
 *   update: (button: HTMLButtonElement, job: Job) => void,
 *   run: (job: Job) => unknown,
 * }} RowAction
 *   A button in a job's expanded row: `update` sets it up for the job's latest state (its
 *   `hidden`, `title`, data attributes), `run` acts on a click.
 * @typedef {ViewOptions & {
 *   title?: string,
 *   stream?: ProgressStream | null,
 *   filters?: JobFilter[],
 *   search?: boolean,
 *   deleteFinished?: boolean,
 *   confirm?: (text: string) => Promise<boolean>,
 *   rowActions?: RowAction[],
 *   pageSize?: number,
 * }} JobsPanelOptions
 *   `stream`: follow every job of it, page older ones, cancel and forget through it, show
 *   its outages. `filters`: a status select (the first one is the default). `search`: a
 *   name search box. `deleteFinished`: a toolbar button that forgets every finished job
 *   in one request, after `confirm` (by default an inline question in the toolbar).
 * @typedef {{
 *   element: HTMLElement,
 *   update: (job: Job | null, jobId?: string) => void,
 *   setNotice: (text: string) => void,
 *   setFilter: (value: string) => void,
 *   setSearch: (text: string) => Promise<void>,
 *   loadMore: () => Promise<void>,
 *   deleteFinished: () => Promise<void>,
 *   flush: () => void,
 *   reveal: (jobId: string) => boolean,
 *   destroy: () => void,
 *   readonly filter: string,
 *   readonly size: number,
 *   readonly history: JobHistory,
 * }} JobsPanel
 */

/**
 * The list of jobs: running first, then newest first; one compact row per top-level job
 * (`.jp-progress-jobs-row` holding its `.jp-progress-widget`), expanding to the full view
 * on click. Only the first page of rows is built; scrolling to the end builds the next
 * page, and asks the server (`GET jobs?before=`) once the known jobs are all shown.
 * `update(job)` adds or repaints a job; `update(null, jobId)` removes it; `reveal(jobId)`
 * brings a known job's row into view, expanded and outlined (clearing a search or filter
 * that hides it).
 * @param {HTMLElement} container
 * @param {JobsPanelOptions} [options]
 * @returns {JobsPanel}
 */
export function createJobsPanel(container, options = {}) {
  const doc = options.document ?? container.ownerDocument ?? globalThis.document;
  const stream = options.stream ?? null;
  const pageSize = options.pageSize ?? PAGE_SIZE;
  /** @type {ViewOptions} */
  const viewOptions = {
    document: doc,
    tickMs: options.tickMs,
    stream,
    expandable: true,
    onCancel: options.onCancel ?? (stream ? (id) => stream.cancel(id) : undefined),
    onRemove: options.onRemove ?? (stream ? (id) => stream.remove(id) : undefined),
  };
  const filters = options.filters ?? [];
  const rowActions = options.rowActions ?? [];
  const history = new JobHistory();

  const root = el(doc, "div", "jp-progress-jobs-panel");
  const header = el(doc, "div", "jp-progress-jobs-header");
  const title = el(doc, "span", "jp-progress-jobs-title", options.title ?? "Jobs");
  const count = el(doc, "span", "jp-progress-jobs-count");
  header.append(title, count);

  const toolbar = el(doc, "div", "jp-progress-jobs-toolbar");
  const search = el(doc, "input", "jp-progress-jobs-search jp-mod-styled");
  search.type = "search";
  search.placeholder = "Search by name";
  search.setAttribute("aria-label", "Search jobs by name");
  const select = el(doc, "select", "jp-progress-jobs-filter jp-mod-styled");
  select.setAttribute("aria-label", "Show jobs by status");
  for (const [value, label] of filters) {
    const option = el(doc, "option", undefined, label);
    option.value = value;
    select.append(option);
  }
  const clear = button(
    doc,
    "jp-progress-jobs-clear",
    "Delete finished",
    "Forget every finished job on the server"
  );
  if (options.search) toolbar.append(search);
  if (filters.length) toolbar.append(select);
  if (options.deleteFinished) toolbar.append(clear);
  const confirmBar = el(doc, "div", "jp-progress-jobs-confirm");
  confirmBar.setAttribute("role", "alertdialog");
  confirmBar.hidden = true;

  const notice = el(doc, "div", "jp-progress-notice");
  notice.hidden = true;
  notice.setAttribute("role", "status");
  const list = el(doc, "div", "jp-progress-jobs-list");
  list.setAttribute("role", "list");
  list.setAttribute("aria-label", "Jobs");
  const empty = el(doc, "div", "jp-progress-jobs-empty");
  const more = button(doc, "jp-progress-jobs-more", "Load older jobs");
  list.append(empty, more);
  root.append(header);
  if (toolbar.childElementCount) root.append(toolbar, confirmBar);
  root.append(notice, list);
  container.append(root);

  /**
   * @typedef {{row: HTMLElement, view: JobView, buttons: HTMLButtonElement[],
   *   actions: HTMLElement | null}} Row
   * @type {Map<string, Row>} the rows built (a page or a few)
   */
  const rows = new Map();
  /** @type {import("./history.js").Query} */
  const query = { filter: filters[0] ?? null, q: "" };
  if (query.filter) root.dataset.filter = query.filter[0];
  let shownLimit = pageSize;
  let matches = 0;
  let scheduled = false;
  let destroyed = false;
  /** @type {string | null} a job to reveal once it arrives */
  let pendingReveal = null;

  const streamLive = () => !stream || stream.state === "live";

  const refresh = () => {
    const running = history.running;
    const finished = history.jobs.size - running;
    const open = history.mayHaveMore({ filter: null, q: "" }, streamLive());
    const finishedText = finished
      ? ` · ${formatCount(finished)}${open ? "+" : ""} finished`
      : open
        ? ""
        : " · 0 finished";
    count.textContent = history.jobs.size ? `${running} running${finishedText}` : "";
    root.dataset.running = String(running);
    clear.disabled = !viewOptions.onRemove || (finished === 0 && !open);
    const state = history.paging(query);
    const moreKnown = matches > rows.size;
    const moreRemote = !!stream && history.mayHaveMore(query, streamLive());
    more.hidden = !moreKnown && !moreRemote;
    more.disabled = state.loading;
    more.textContent = state.loading ? "Loading…" : moreKnown ? "Show more" : "Load older jobs";
    const filtered = !!query.q.trim() || (query.filter && query.filter[0] !== filters[0]?.[0]);
    empty.textContent = state.loading
      ? "Loading…"
      : filtered
        ? "No job matches."
        : "No jobs yet.";
    empty.hidden = rows.size > 0;
  };

  /**
   * @param {Row} entry
   * @param {Job} job
   */
  const paintRow = (entry, job) => {
    entry.view.update(job);
    entry.row.dataset.status = job.status;
    entry.buttons.forEach((node, index) => rowActions[index].update(node, job));
  };

  /**
   * @param {Job} job
   * @returns {Row}
   */
  const createRow = (job) => {
    const row = el(doc, "div", "jp-progress-jobs-row");
    row.setAttribute("role", "listitem");
    row.dataset.jobId = job.job_id;
    /** @type {Row} */
    const entry = { row, view: /** @type {any} */ (null), buttons: [], actions: null };
    entry.view = createJobView(row, {
      ...viewOptions,
      onExpand(open) {
        const current = entry.view.job;
        if (open && current && stream && isFinal(current)) void stream.loadChildren(current.job_id);
        if (open && rowActions.length && !entry.actions) {
          const actions = el(doc, "div", "jp-progress-jobs-actions");
          for (const action of rowActions) {
            const node = button(doc, action.className, action.label);
            node.addEventListener("click", () => {
              if (entry.view.job) action.run(entry.view.job);
            });
            entry.buttons.push(node);
          }
          actions.append(...entry.buttons);
          entry.view.element.append(actions);
          entry.actions = actions;
          if (current) paintRow(entry, current);
        }
        if (entry.actions) entry.actions.hidden = !open;
      },
    });
    entry.view.toggle?.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      event.preventDefault();
      const sibling =
        event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      const next = /** @type {HTMLElement | null | undefined} */ (
        sibling?.querySelector(".jp-progress-toggle")
      );
      next?.focus();
    });
    return entry;
  };

  /** Build, move and drop rows so the list shows the first `shownLimit` matching jobs. */
  const render = () => {
    scheduled = false;
    if (destroyed) return;
    const wanted = history.matching(query);
    matches = wanted.length;
    const shown = wanted.slice(0, shownLimit);
    syncRows(list, rows, shown, {
      create: createRow,
      destroy: (entry) => entry.view.destroy(),
      // Rows already shown are painted by `update` as their job changes.
      paint: (entry, job, fresh) => fresh && paintRow(entry, job),
    });
    refresh();
    if (pendingReveal && history.jobs.has(pendingReveal)) panel.reveal(pendingReveal);
  };

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(render);
  };

  /** Ask the server for the query's next page (one request at a time). */
  const fetchPage = async () => {
    if (!stream) return;
    const state = history.paging(query);
    if (state.loading || !history.mayHaveMore(query, streamLive())) return;
    const asked = { ...query };
    state.loading = true;
    refresh();
    try {
      // The first page of a query spans what the page knows already (the stream's
      // newest jobs) plus a page, so it brings a page of new rows, not duplicates.
      const limit = state.next ? pageSize : Math.min(MAX_PAGE, matches + pageSize);
      const page = await stream.fetchJobs(history.nextRequest(asked, limit));
      history.addPage(asked, page, (id) => stream.removed.has(id));
      panel.setNotice("");
    } catch (error) {
      panel.setNotice(`Could not load older jobs: ${errorText(error)}`);
      console.warn(LOG_PREFIX, "could not load jobs", error);
    } finally {
      state.loading = false;
    }
    if (!destroyed) render();
  };

  /** Show the next page: of known rows first, then of the server's. */
  const loadMore = async () => {
    render();
    if (matches > shownLimit) {
      shownLimit += pageSize;
      render();
      return;
    }
    shownLimit = Math.max(shownLimit, rows.size + pageSize);
    await fetchPage();
  };

  /** After the user narrowed the query: fill its first page from the server if needed
   * (the unnarrowed list asks only when scrolled to its end). */
  const fill = async () => {
    shownLimit = pageSize;
    render();
    const narrowed = !!query.q.trim() || (!!query.filter && query.filter !== filters[0]);
    if (narrowed && matches < pageSize) await fetchPage();
  };

  list.addEventListener("scroll", () => {
    if (list.scrollTop + list.clientHeight < list.scrollHeight - 150) return;
    const state = history.paging(query);
    if (!state.loading && !more.hidden) void loadMore();
  });
  more.addEventListener("click", () => void loadMore());
  select.addEventListener("change", () => panel.setFilter(select.value));
  /** @type {any} */
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void panel.setSearch(search.value), 250);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(searchTimer);
      void panel.setSearch(search.value);
    }
  });

  /**
   * @param {string} text
   * @returns {Promise<boolean>}
   */
  const inlineConfirm = (text) =>
    new Promise((resolve) => {
      const yes = button(doc, "jp-progress-jobs-confirm-yes", "Delete");
      const no = button(doc, "jp-progress-jobs-confirm-no", "Keep");
      confirmBar.replaceChildren(el(doc, "span", undefined, text), yes, no);
      confirmBar.hidden = false;
      const done = (/** @type {boolean} */ answer) => {
        confirmBar.hidden = true;
        confirmBar.replaceChildren();
        clear.focus();
        resolve(answer);
      };
      yes.addEventListener("click", () => done(true));
      no.addEventListener("click", () => done(false));
      no.focus();
    });
  clear.addEventListener("click", () => void panel.deleteFinished());

  /** @type {JobsPanel} */
  const panel = {
    element: root,
    history,
    get size() {
      return rows.size;
    },
    get filter() {
      return query.filter?.[0] ?? "";
    },
    update(job, jobId) {
      const id = job?.job_id ?? jobId;
      if (!id) return;
      if (!job) {
        if (history.remove(id) || rows.has(id)) schedule();
        return;
      }
      const before = history.jobs.get(id);
      if (!history.upsert(job)) return;
      if (id === pendingReveal) {
        schedule();
        return;
      }
      const entry = rows.get(id);
      const sameGroup = !!before && isFinal(before) === isFinal(job);
      const matchesNow = matchesQuery(job, query);
      if (entry && matchesNow && sameGroup) {
        paintRow(entry, job);
        return;
      }
      if (!entry && !matchesNow) {
        if (!sameGroup) refresh();
        return;
      }
      if (entry) paintRow(entry, job);
      schedule();
    },
    setFilter(value) {
      if (!filters.length) return;
      query.filter = filters.find(([v]) => v === value) ?? filters[0];
      select.value = query.filter[0];
      root.dataset.filter = query.filter[0];
      void fill();
    },
    async setSearch(text) {
      search.value = text;
      if (query.q === text) return;
      query.q = text;
      root.dataset.search = text;
      await fill();
    },
    loadMore,
    flush: render,
    reveal(jobId) {
      const job = history.jobs.get(jobId);
      // Not known yet (the list was just built: the stream delivers in the next frame):
      // revealed as soon as it arrives.
      pendingReveal = job ? null : jobId;
      if (!job) return false;
      if (!matchesQuery(job, query)) {
        query.q = "";
        search.value = "";
        delete root.dataset.search;
        if (filters.length) {
          query.filter = filters[0];
          select.value = filters[0][0];
          root.dataset.filter = filters[0][0];
        }
      }
      const index = history.matching(query).findIndex((j) => j.job_id === jobId);
      shownLimit = Math.max(shownLimit, index + 1);
      render();
      const entry = rows.get(jobId);
      if (!entry) return false;
      entry.view.setExpanded(true);
      entry.row.querySelector("details.jp-progress-errors")?.setAttribute("open", "");
      for (const other of list.querySelectorAll(".jp-mod-highlighted")) {
        other.classList.remove("jp-mod-highlighted");
      }
      entry.row.classList.add("jp-mod-highlighted");
      entry.row.scrollIntoView?.({ block: "nearest" });
      return true;
    },
    setNotice(text) {
      notice.textContent = text || "";
      notice.hidden = !text;
    },
    async deleteFinished() {
      if (!stream && !viewOptions.onRemove) return;
      const question =
        "Delete every finished job on the server? Running jobs stay. This cannot be undone.";
      const ok = await (options.confirm ?? inlineConfirm)(question);
      if (!ok) return;
      clear.disabled = true;
      try {
        if (stream) {
          const deleted = await stream.deleteFinished();
          history.removeFinished();
          panel.setNotice(`Deleted ${formatCount(deleted)} finished job(s).`);
        } else {
          const remove = /** @type {(id: string) => unknown} */ (viewOptions.onRemove);
          for (const job of [...history.jobs.values()].filter((j) => isFinal(j))) {
            await remove(job.job_id);
            history.remove(job.job_id);
          }
        }
      } catch (error) {
        panel.setNotice(`Could not delete the finished jobs: ${errorText(error)}`);
        console.warn(LOG_PREFIX, "could not delete finished jobs", error);
      }
      render();
    },
    destroy() {
      destroyed = true;
      clearTimeout(searchTimer);
      for (const cleanup of cleanups.splice(0)) cleanup();
      for (const { view } of rows.values()) view.destroy();
      rows.clear();
      root.remove();
    },
  };

  /** @type {Array<() => void>} */
  const cleanups = [];
  const ages = setInterval(() => {
    for (const { view } of rows.values()) if (isFinal(view.job)) view.repaintAge();
  }, AGE_REPAINT_MS);
  cleanups.push(() => clearInterval(ages));
  if (stream) {
    const showState = (/** @type {string} */ state) => {
      if (state === "down") panel.setNotice(STREAM_DOWN_NOTICE);
      else if (notice.textContent === STREAM_DOWN_NOTICE) panel.setNotice("");
      refresh();
    };
    cleanups.push(
      stream.subscribeAll((job, id) => panel.update(job, id)),
      stream.onState(showState)
    );
    if (stream.state === "down") showState(stream.state);
  }
  render();
  return panel;
}

export { JOB_FILTERS };
