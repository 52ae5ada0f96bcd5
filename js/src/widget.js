// The anywidget front end: `JobProgress(job_id)` and `JobsPanel()`.
//
// The model holds `job_id` (empty: the jobs panel) and `job` (the last state synced
// from the kernel). Live state comes from the page's one shared event stream; the
// kernel-synced `job` is the fallback where no server extension is reachable from the
// page (VS Code, Colab, static viewers) or the server does not know the job.

import { createJobView, createJobsPanel, JOB_FILTERS } from "./render.js";
import { isFinal, placeholderJob, STREAM_DOWN_NOTICE } from "./contract.js";
import { getStream } from "./stream.js";

/** @typedef {import("./contract.js").Job} Job */

export const NO_SERVER_NOTICE =
  "No jupyter-progress server is reachable from this page (VS Code, Colab or a static " +
  "viewer?): showing the state synced from the kernel.";

/**
 * The state to show: the server's (pushed) unless the kernel's is further along.
 * @param {Job | null} fromStream
 * @param {Job | null} fromKernel
 * @returns {Job | null}
 */
export function pickJob(fromStream, fromKernel) {
  if (!fromStream) return fromKernel;
  if (!fromKernel || fromKernel.job_id !== fromStream.job_id) return fromStream;
  if (isFinal(fromStream)) return fromStream;
  if (isFinal(fromKernel)) return fromKernel;
  const kernelDone = fromKernel.progress?.processed ?? 0;
  return kernelDone > (fromStream.progress?.processed ?? 0) ? fromKernel : fromStream;
}

/**
 * @param {any} model
 * @returns {Job | null}
 */
function kernelJob(model) {
  const job = model.get("job");
  return job && typeof job === "object" && typeof job.job_id === "string" ? job : null;
}

/** @param {{model: any, el: HTMLElement}} context */
function renderJob({ model, el }) {
  const jobId = String(model.get("job_id"));
  const stream = getStream();
  const view = createJobView(el, {
    stream,
    onCancel: stream ? (id) => stream.cancel(id) : undefined,
  });
  view.element.dataset.jobId = jobId;
  /** @type {Job | null} */
  let fromStream = null;
  const paint = () => {
    const job = pickJob(fromStream, kernelJob(model));
    view.update(job ?? placeholderJob(jobId));
  };
  // Kernel-synced changes are painted at most once per animation frame, like the stream's.
  /** @type {number | null} */
  let frame = null;
  const paintSoon = () => {
    if (frame === null) {
      frame = requestAnimationFrame(() => {
        frame = null;
        paint();
      });
    }
  };
  model.on("change:job", paintSoon);
  /** @type {Array<() => void>} */
  const cleanups = [
    () => model.off("change:job", paintSoon),
    () => frame !== null && cancelAnimationFrame(frame),
  ];
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

/** @param {{model: any, el: HTMLElement}} context */
function renderPanel({ el }) {
  const stream = getStream();
  const panel = createJobsPanel(el, {
    stream,
    filters: JOB_FILTERS,
    search: true,
    deleteFinished: true,
  });
  if (!stream) {
    panel.setNotice(
      "No jupyter-progress server is reachable from this page (VS Code, Colab or a " +
        "static viewer?): the jobs panel needs one."
    );
  }
  return () => panel.destroy();
}

export default {
  /** @param {{model: any}} _context */
  initialize(_context) {
    return () => {};
  },
  /** @param {{model: any, el: HTMLElement}} context */
  render(context) {
    context.el.classList.add("jp-progress-host");
    return context.model.get("job_id") ? renderJob(context) : renderPanel(context);
  },
};
