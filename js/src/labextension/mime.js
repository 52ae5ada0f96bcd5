// The MIME renderer of `application/vnd.jupyter-progress.job+json`: a job's progress in
// an output, drawn from the server's event stream, without the kernel.
//
// An output of `track()`, `Job` or `JobProgress` carries this mimetype beside the
// anywidget view. Ranked -20, this renderer beats the widget manager's (-10), so after a
// page reload while the kernel is busy, or in a notebook reopened after its kernel is
// gone, the output is live (or final) at once instead of "Loading widget...". It is safe
// (text only), so it also renders in untrusted notebooks.

import { Widget } from "@lumino/widgets";
import { createJobView } from "../render.js";
import { isFinal, LOG_PREFIX, placeholderJob, STREAM_DOWN_NOTICE } from "../contract.js";
import { getStream } from "../stream.js";
import { parseOutputData } from "./jobs.js";

/** @typedef {import("../contract.js").Job} Job */
/** @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IMimeModel} IMimeModel */
/** @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IRendererOptions} IRendererOptions */
/** @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IExtension} IExtension */

export const MIME_TYPE = "application/vnd.jupyter-progress.job+json";
/** Lower wins: the widget manager's widget-view renderer is -10. */
export const RENDERER_RANK = -20;

export const UNKNOWN_NOTICE =
  "The server no longer knows this job: showing the last state saved in the notebook.";
export const UNKNOWN_NO_STATE_NOTICE =
  "The server does not know this job, and the notebook saved no state for it.";
export const NO_SERVER_NOTICE =
  "No Jupyter server reachable from this page: showing the last state saved in the notebook.";

/** Renders one output's job; follows it on the page's shared stream. */
export class JobRenderer extends Widget {
  /** @param {IRendererOptions} options */
  constructor(options) {
    super();
    this._mimeType = options.mimeType;
    this.addClass("jp-progress-renderer");
    /** @type {string | null} */
    this._jobId = null;
    /** @type {Job | null} the state saved in the output */
    this._saved = null;
    /** @type {Job | null} the server's latest state */
    this._live = null;
    this._unknown = false;
    /** @type {Array<() => void>} */
    this._cleanups = [];
    /** @type {import("../render.js").JobView | null} */
    this._view = null;
  }

  /**
   * @param {IMimeModel} model
   * @returns {Promise<void>}
   */
  renderModel(model) {
    const parsed = parseOutputData(model.data[this._mimeType]);
    if (!parsed) {
      this._reset();
      this.node.textContent = "jupyter-progress: this output holds no job id.";
      return Promise.resolve();
    }
    this._saved = parsed.saved;
    if (parsed.jobId !== this._jobId) this._follow(parsed.jobId);
    this._paint();
    return Promise.resolve();
  }

  /** @param {string} jobId */
  _follow(jobId) {
    this._reset();
    this._jobId = jobId;
    const stream = getStream();
    this._view = createJobView(this.node, {
      stream,
      onCancel: stream ? (id) => stream.cancel(id) : undefined,
    });
    this._view.element.dataset.jobId = jobId;
    if (!stream) {
      this._view.setNotice(NO_SERVER_NOTICE);
      return;
    }
    // The stream is usually open already (the status bar follows every job): paint the
    // server's state in the first frame rather than the saved one. A job older than the
    // stream's snapshot is asked for once by the stream; null means the server does not
    // know it.
    this._live = stream.jobs.get(jobId) ?? null;
    this._unknown = stream.removed.has(jobId);
    this._cleanups.push(
      stream.subscribeJob(jobId, (job) => {
        this._live = job;
        this._unknown = job === null;
        this._paint();
      }),
      stream.onState(() => this._paint())
    );
  }

  _paint() {
    const view = this._view;
    const jobId = this._jobId;
    if (!view || !jobId) return;
    const saved = this._saved;
    let job = this._live ?? saved ?? placeholderJob(jobId);
    // A final state saved in the output is never replaced by an older live one.
    if (this._live && saved && isFinal(saved) && !isFinal(this._live)) job = saved;
    view.update(job);
    view.element.dataset.source = this._live ? "server" : this._unknown ? "saved" : "pending";
    const stream = getStream();
    if (this._unknown) {
      view.setNotice(saved ? UNKNOWN_NOTICE : UNKNOWN_NO_STATE_NOTICE);
    } else if (stream && stream.state === "down") {
      view.setNotice(STREAM_DOWN_NOTICE);
    } else if (!stream) {
      view.setNotice(NO_SERVER_NOTICE);
    } else {
      view.setNotice("");
    }
  }

  _reset() {
    for (const cleanup of this._cleanups.splice(0)) {
      try {
        cleanup();
      } catch (error) {
        console.error(LOG_PREFIX, "cleanup failed", error);
      }
    }
    this._view?.destroy();
    this._view = null;
    this._jobId = null;
    this._live = null;
    this._unknown = false;
    this.node.textContent = "";
  }

  dispose() {
    if (this.isDisposed) return;
    this._reset();
    super.dispose();
  }
}

/** @type {IExtension} */
const extension = {
  id: "jupyter-progress:renderer",
  description: "Renders a jupyter-progress job from the server, without the kernel.",
  rendererFactory: {
    safe: true,
    mimeTypes: [MIME_TYPE],
    defaultRank: RENDERER_RANK,
    createRenderer: (options) => new JobRenderer(options),
  },
  rank: RENDERER_RANK,
  dataType: "json",
};

export default extension;
