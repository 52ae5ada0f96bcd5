// The Jobs side panel: every job on the server, live, newest first; filter by status,
// cancel, forget finished jobs, open a notebook job's executed copy, error samples.
// Each job is the shared job view of render.js (`.jp-progress-widget`), fed by the page's
// one event stream.

import { Widget } from "@lumino/widgets";
import { createJobView } from "../render.js";
import { getStream, isFinal } from "../stream.js";
import { countRunning, executedCopyPath, FILTERS } from "./jobs.js";

/** @typedef {import("../stream.js").Job} Job */
/** @typedef {import("../render.js").JobView} JobView */

export const PANEL_ID = "jupyter-progress-jobs";
const LOG_PREFIX = "[jupyter-progress]";

/**
 * @typedef {{
 *   openPath?: (path: string) => unknown,
 * }} PanelOptions
 */

/** The Lumino widget of the side panel. */
export class JobsPanelWidget extends Widget {
  /** @param {PanelOptions} [options] */
  constructor(options = {}) {
    super();
    this.id = PANEL_ID;
    this.addClass("jp-progress-lab-panel");
    this.title.caption = "Jobs (jupyter-progress)";
    this._openPath = options.openPath;
    const doc = this.node.ownerDocument;

    const root = doc.createElement("div");
    root.className = "jp-progress-jobs-panel";
    root.dataset.filter = "all";

    const header = doc.createElement("div");
    header.className = "jp-progress-jobs-header";
    const title = doc.createElement("span");
    title.className = "jp-progress-jobs-title";
    title.textContent = "Jobs";
    this._count = doc.createElement("span");
    this._count.className = "jp-progress-jobs-count";
    header.append(title, this._count);

    const toolbar = doc.createElement("div");
    toolbar.className = "jp-progress-jobs-toolbar";
    const filter = doc.createElement("select");
    filter.className = "jp-progress-jobs-filter jp-mod-styled";
    filter.setAttribute("aria-label", "Show jobs by status");
    for (const [value, label] of FILTERS) {
      const option = doc.createElement("option");
      option.value = value;
      option.textContent = label;
      filter.append(option);
    }
    filter.addEventListener("change", () => this.setFilter(filter.value));
    this._filter = filter;
    const clear = doc.createElement("button");
    clear.type = "button";
    clear.className = "jp-progress-jobs-clear jp-mod-styled";
    clear.textContent = "Delete finished";
    clear.title = "Forget every finished job on the server";
    clear.addEventListener("click", () => void this.deleteFinished());
    this._clear = clear;
    toolbar.append(filter, clear);

    this._notice = doc.createElement("div");
    this._notice.className = "jp-progress-notice";
    this._notice.hidden = true;
    this._list = doc.createElement("div");
    this._list.className = "jp-progress-jobs-list";
    this._empty = doc.createElement("div");
    this._empty.className = "jp-progress-jobs-empty";
    root.append(header, toolbar, this._notice, this._list, this._empty);
    this._root = root;
    this.node.append(root);

    /** @type {Map<string, {row: HTMLElement, view: JobView, open: HTMLButtonElement}>} */
    this._rows = new Map();
    /** @type {Array<() => void>} */
    this._cleanups = [];
    /** @type {string | null} a job to show as soon as its row exists */
    this._pendingReveal = null;
    this._stream = getStream();
    if (this._stream) {
      const stream = this._stream;
      this._cleanups.push(
        stream.subscribeAll((job, id) => this.updateJob(job, id)),
        stream.onState((state) =>
          this._setNotice(
            state === "down"
              ? "Live updates interrupted: reconnecting, and checking every 5 s meanwhile."
              : ""
          )
        )
      );
    } else {
      this._setNotice("No Jupyter server reachable from this page.");
    }
    this._refresh();
  }

  /** The current status filter. */
  get filter() {
    return this._filter.value;
  }

  /** @param {string} value one of FILTERS' values */
  setFilter(value) {
    const known = FILTERS.find(([v]) => v === value);
    this._filter.value = known ? value : "all";
    this._root.dataset.filter = this._filter.value;
    for (const { row, view } of this._rows.values()) this._applyFilter(row, view.job);
    this._refresh();
  }

  /**
   * Add, repaint or (with null) drop a job.
   * @param {Job | null} job
   * @param {string} [jobId]
   */
  updateJob(job, jobId) {
    const id = job?.job_id ?? jobId;
    if (!id) return;
    let entry = this._rows.get(id);
    if (!job) {
      if (entry) {
        entry.view.destroy();
        entry.row.remove();
        this._rows.delete(id);
      }
      this._refresh();
      return;
    }
    if (!entry) {
      entry = this._createRow(job);
      this._rows.set(id, entry);
      entry.view.update(job);
      this._place(id, entry.row);
    } else {
      entry.view.update(job);
    }
    entry.row.dataset.status = job.status;
    const path = executedCopyPath(job);
    entry.open.hidden = !path || !this._openPath;
    entry.open.dataset.path = path ?? "";
    entry.open.title = path ? `Open ${path}` : "";
    this._applyFilter(entry.row, job);
    this._refresh();
    if (this._pendingReveal === id) this.revealJob(id);
  }

  /**
   * Bring one job's row into view, highlighted, its error samples open (the action of a
   * notification). A job not listed yet is shown when its row arrives.
   * @param {string} jobId
   * @returns {boolean} whether the row was there
   */
  revealJob(jobId) {
    const entry = this._rows.get(jobId);
    this._pendingReveal = entry ? null : jobId;
    if (!entry) return false;
    if (entry.row.hidden) this.setFilter("all");
    for (const { row } of this._rows.values()) row.classList.remove("jp-mod-highlighted");
    entry.row.classList.add("jp-mod-highlighted");
    entry.row.querySelector("details")?.setAttribute("open", "");
    entry.row.scrollIntoView?.({ block: "nearest" });
    return true;
  }

  /** @param {Job} job */
  _createRow(job) {
    const doc = this.node.ownerDocument;
    const stream = this._stream;
    const row = doc.createElement("div");
    row.className = "jp-progress-jobs-row";
    row.dataset.jobId = job.job_id;
    row.dataset.created = job.created_at ?? "";
    const view = createJobView(row, {
      onCancel: stream ? (id) => stream.cancel(id) : undefined,
      onRemove: stream ? (id) => stream.remove(id) : undefined,
    });
    const actions = doc.createElement("div");
    actions.className = "jp-progress-jobs-actions";
    const open = doc.createElement("button");
    open.type = "button";
    open.className = "jp-progress-open-output jp-mod-styled";
    open.textContent = "Open executed notebook";
    open.hidden = true;
    open.addEventListener("click", () => {
      const path = open.dataset.path;
      if (path && this._openPath) this._openPath(path);
    });
    actions.append(open);
    row.append(actions);
    return { row, view, open };
  }

  /**
   * Newest first: created_at descending (ISO times sort as strings), then id.
   * @param {string} id
   * @param {HTMLElement} row
   */
  _place(id, row) {
    const created = row.dataset.created ?? "";
    let before = null;
    for (const child of this._list.children) {
      const other = /** @type {HTMLElement} */ (child);
      const otherCreated = other.dataset.created ?? "";
      const otherId = other.dataset.jobId ?? "";
      if (otherCreated < created || (otherCreated === created && otherId < id)) {
        before = other;
        break;
      }
    }
    this._list.insertBefore(row, before);
  }

  /**
   * @param {HTMLElement} row
   * @param {Job | null} job
   */
  _applyFilter(row, job) {
    const test = FILTERS.find(([v]) => v === this._filter.value)?.[2] ?? (() => true);
    row.hidden = !!job && !test(job);
  }

  _refresh() {
    let running = 0;
    let finished = 0;
    let shown = 0;
    for (const { row, view } of this._rows.values()) {
      if (view.job && !isFinal(view.job)) running++;
      else finished++;
      if (!row.hidden) shown++;
    }
    const total = this._rows.size;
    this._count.textContent = total ? `${running} running · ${total} total` : "";
    this._root.dataset.running = String(running);
    this._clear.disabled = finished === 0 || !this._stream;
    this._empty.textContent = total ? "No job matches this filter." : "No jobs yet.";
    this._empty.hidden = shown > 0;
  }

  /** @param {string} text */
  _setNotice(text) {
    this._notice.textContent = text;
    this._notice.hidden = !text;
  }

  /** Forget every finished job on the server (the stream then drops their rows). */
  async deleteFinished() {
    const stream = this._stream;
    if (!stream) return;
    const ids = [...this._rows.values()]
      .filter(({ view }) => view.job && isFinal(view.job))
      .map(({ view }) => /** @type {Job} */ (view.job).job_id);
    const failures = [];
    for (const id of ids) {
      try {
        await stream.remove(id);
      } catch (error) {
        failures.push(id);
        console.warn(LOG_PREFIX, "could not delete job", id, error);
      }
    }
    this._setNotice(failures.length ? `Could not delete ${failures.length} job(s).` : "");
  }

  dispose() {
    if (this.isDisposed) return;
    for (const cleanup of this._cleanups.splice(0)) cleanup();
    for (const { view } of this._rows.values()) view.destroy();
    this._rows.clear();
    super.dispose();
  }
}

/** The status-bar item: the number of running jobs; a click opens the panel. */
export class StatusItem extends Widget {
  /** @param {{onClick: () => void}} options */
  constructor(options) {
    super();
    this.addClass("jp-progress-status");
    this.node.dataset.running = "0";
    this.node.title = "jupyter-progress jobs: click to show the Jobs panel";
    this.node.setAttribute("role", "button");
    this.node.tabIndex = 0;
    this.node.addEventListener("click", options.onClick);
    this.node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") options.onClick();
    });
    /** @type {Map<string, Job>} */
    this._jobs = new Map();
    /** @type {Array<() => void>} */
    this._cleanups = [];
    const stream = getStream();
    if (stream) {
      this._cleanups.push(
        stream.subscribeAll((job, id) => {
          if (job) this._jobs.set(id, job);
          else this._jobs.delete(id);
          this._render();
        })
      );
    }
    this._render();
  }

  /** Number of jobs not finished yet (pending or processing). */
  get running() {
    return countRunning(this._jobs.values());
  }

  _render() {
    const running = this.running;
    this.node.dataset.running = String(running);
    this.node.textContent = running === 1 ? "1 job running" : `${running} jobs running`;
    this.node.classList.toggle("jp-mod-active", running > 0);
  }

  dispose() {
    if (this.isDisposed) return;
    for (const cleanup of this._cleanups.splice(0)) cleanup();
    super.dispose();
  }
}
