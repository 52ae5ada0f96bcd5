// The Jobs side panel: every job on the server, live, newest first; filter by status,
// cancel, forget finished jobs, open a notebook job's executed copy, error samples.
// It is the jobs list of render.js (the same one as the anywidget `JobsPanel`) with the
// panel's options: the status filter, "Delete finished", and an "Open executed notebook"
// row action; fed by the page's one event stream.

import { Widget } from "@lumino/widgets";
import { createJobsPanel } from "../render.js";
import { getStream } from "../stream.js";
import { countRunning, executedCopyPath, FILTERS } from "./jobs.js";

/** @typedef {import("../contract.js").Job} Job */
/** @typedef {import("../render.js").RowAction} RowAction */

export const PANEL_ID = "jupyter-progress-jobs";

/**
 * @typedef {{
 *   openPath?: (path: string) => unknown,
 * }} PanelOptions
 */

/**
 * The row action that opens a notebook job's executed copy (`data-path` on the button).
 * @param {(path: string) => unknown} openPath
 * @returns {RowAction}
 */
function openExecutedCopy(openPath) {
  return {
    className: "jp-progress-open-output",
    label: "Open executed notebook",
    update(button, job) {
      const path = executedCopyPath(job);
      button.hidden = !path;
      button.dataset.path = path ?? "";
      button.title = path ? `Open ${path}` : "";
    },
    run(job) {
      const path = executedCopyPath(job);
      if (path) openPath(path);
    },
  };
}

/** The Lumino widget of the side panel. */
export class JobsPanelWidget extends Widget {
  /** @param {PanelOptions} [options] */
  constructor(options = {}) {
    super();
    this.id = PANEL_ID;
    this.addClass("jp-progress-lab-panel");
    this.title.caption = "Jobs (jupyter-progress)";
    const stream = getStream();
    this.panel = createJobsPanel(this.node, {
      stream,
      filters: FILTERS,
      deleteFinished: true,
      rowActions: options.openPath ? [openExecutedCopy(options.openPath)] : [],
    });
    if (!stream) this.panel.setNotice("No Jupyter server reachable from this page.");
    /** @type {(() => void) | null} stops waiting for a row to reveal */
    this._stopReveal = null;
  }

  /**
   * Bring one job's row into view, outlined, its error samples open (the action of a
   * notification). A row not there yet (the panel was just created) is shown when it
   * arrives, within 10 s.
   * @param {string} jobId
   */
  revealJob(jobId) {
    this._stopReveal?.();
    const selector = `.jp-progress-jobs-row[data-job-id="${CSS.escape(jobId)}"]`;
    const reveal = () => {
      const row = /** @type {HTMLElement | null} */ (this.node.querySelector(selector));
      if (!row) return false;
      if (row.hidden) this.panel.setFilter("all");
      for (const other of this.node.querySelectorAll(".jp-mod-highlighted")) {
        other.classList.remove("jp-mod-highlighted");
      }
      row.classList.add("jp-mod-highlighted");
      row.querySelector("details")?.setAttribute("open", "");
      row.scrollIntoView?.({ block: "nearest" });
      return true;
    };
    if (reveal()) return;
    const observer = new MutationObserver(() => {
      if (reveal()) stop();
    });
    const timer = setTimeout(() => stop(), 10_000);
    const stop = () => {
      observer.disconnect();
      clearTimeout(timer);
      this._stopReveal = null;
    };
    this._stopReveal = stop;
    observer.observe(this.node, { childList: true, subtree: true });
  }

  dispose() {
    if (this.isDisposed) return;
    this._stopReveal?.();
    this.panel.destroy();
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
