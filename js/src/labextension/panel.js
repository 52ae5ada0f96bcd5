// The Jobs side panel: every job on the server, live, running first, then newest first;
// compact rows that expand; search by name, filter by status, cancel, forget every
// finished job in one request, open a notebook job's executed copy.
// It is the jobs list of render.js (the same one as the anywidget `JobsPanel`) with the
// panel's options: search, the status filter, "Delete finished" behind JupyterLab's
// dialog, and an "Open executed notebook" row action; fed by the page's one event stream.
// Nothing of it is built before the panel is first shown.

import { Dialog, showDialog } from "@jupyterlab/apputils";
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

/**
 * JupyterLab's confirmation dialog for "Delete finished".
 * @param {string} text
 * @returns {Promise<boolean>}
 */
async function confirmDelete(text) {
  const result = await showDialog({
    title: "Delete finished jobs",
    body: text,
    buttons: [Dialog.cancelButton({ label: "Keep" }), Dialog.warnButton({ label: "Delete" })],
  });
  return result.button.accept;
}

/** The Lumino widget of the side panel. */
export class JobsPanelWidget extends Widget {
  /** @param {PanelOptions} [options] */
  constructor(options = {}) {
    super();
    this.id = PANEL_ID;
    this.addClass("jp-progress-lab-panel");
    this.title.caption = "Jobs (jupyter-progress)";
    this._options = options;
    /** @type {import("../render.js").JobsPanel | null} built when first shown */
    this.panel = null;
  }

  /** Build the list the first time the panel shows (not at page load). */
  _ensureList() {
    if (this.panel || this.isDisposed) return;
    const stream = getStream();
    const openPath = this._options.openPath;
    this.panel = createJobsPanel(this.node, {
      stream,
      filters: FILTERS,
      search: true,
      deleteFinished: true,
      confirm: confirmDelete,
      rowActions: openPath ? [openExecutedCopy(openPath)] : [],
    });
    if (!stream) this.panel.setNotice("No Jupyter server reachable from this page.");
  }

  /**
   * Bring one job's row into view, outlined and expanded (its error samples open): the
   * action of a notification. A job not known yet (the panel was just built; the stream
   * delivers in the next frame) is revealed when it arrives.
   * @param {string} jobId
   */
  revealJob(jobId) {
    this._ensureList();
    this.panel?.reveal(jobId);
  }

  /** @param {import("@lumino/messaging").Message} msg */
  onAfterShow(msg) {
    super.onAfterShow(msg);
    this._ensureList();
  }

  /** @param {import("@lumino/messaging").Message} msg */
  onAfterAttach(msg) {
    super.onAfterAttach(msg);
    if (this.isVisible) this._ensureList();
  }

  dispose() {
    if (this.isDisposed) return;
    this.panel?.destroy();
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
