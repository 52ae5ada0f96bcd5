// The JupyterLab (and Notebook 7) plugins of jupyter-progress: the Jobs side panel, its
// command "Show Jobs", the status-bar count of running jobs, and notifications when a long
// job ends (./notify.js). The MIME renderer of job
// outputs is the mime extension in ./mime.js. All of them share the page's one event
// stream (../stream.js).

import { ILayoutRestorer } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { IStatusBar } from "@jupyterlab/statusbar";
import { LabIcon } from "@jupyterlab/ui-components";
import { LOG_PREFIX } from "../contract.js";
import { COMMAND_SHOW_JOBS } from "./jobs.js";
import { notifyPlugin } from "./notify.js";
import { JobsPanelWidget, PANEL_ID, StatusItem } from "./panel.js";
import "./style.css";

/** @typedef {import("@jupyterlab/application").JupyterFrontEnd} JupyterFrontEnd */
/** @typedef {import("@jupyterlab/apputils").ICommandPalette} CommandPalette */
/** @typedef {import("@jupyterlab/statusbar").IStatusBar} StatusBar */
/** @typedef {import("@jupyterlab/application").ILayoutRestorer} LayoutRestorer */

export { COMMAND_SHOW_JOBS };

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<rect x="3" y="5" width="18" height="3" rx="1.5"/>' +
  '<rect x="3" y="10.5" width="12" height="3" rx="1.5"/>' +
  '<rect x="3" y="16" width="7" height="3" rx="1.5"/>' +
  "</g></svg>";

export const jobsIcon = new LabIcon({ name: "jupyter-progress:jobs", svgstr: ICON_SVG });

/** @type {import("@jupyterlab/application").JupyterFrontEndPlugin<void>} */
const jobsPlugin = {
  id: "jupyter-progress:jobs",
  description: "The Jobs side panel and the status-bar count of running jobs.",
  autoStart: true,
  optional: [ICommandPalette, IStatusBar, ILayoutRestorer],
  /**
   * @param {JupyterFrontEnd} app
   * @param {CommandPalette | null} palette
   * @param {StatusBar | null} statusBar
   * @param {LayoutRestorer | null} restorer
   */
  activate(app, palette, statusBar, restorer) {
    /** @type {JobsPanelWidget | null} */
    let panel = null;
    const openPath = (/** @type {string} */ path) =>
      app.commands.execute("docmanager:open", { path });

    const ensurePanel = () => {
      if (!panel || panel.isDisposed) {
        panel = new JobsPanelWidget({ openPath });
        panel.title.icon = jobsIcon;
        panel.title.caption = "Jobs";
      }
      if (!panel.isAttached) {
        app.shell.add(panel, "right", { rank: 900 });
        restorer?.add(panel, PANEL_ID);
      }
      return panel;
    };

    app.commands.addCommand(COMMAND_SHOW_JOBS, {
      label: "Show Jobs",
      caption: "Show every jupyter-progress job on the server, live",
      execute: (args) => {
        const widget = ensurePanel();
        app.shell.activateById(widget.id);
        if (typeof args?.jobId === "string") widget.revealJob(args.jobId);
      },
    });
    palette?.addItem({ command: COMMAND_SHOW_JOBS, category: "Jobs" });

    app.restored.then(() => ensurePanel()).catch((error) => {
      console.error(LOG_PREFIX, "could not add the Jobs panel", error);
    });

    if (statusBar) {
      const item = new StatusItem({
        onClick: () => void app.commands.execute(COMMAND_SHOW_JOBS),
      });
      statusBar.registerStatusItem("jupyter-progress:status", {
        item,
        align: "left",
        rank: 5,
        isActive: () => true,
      });
    }
  },
};

export default [jobsPlugin, notifyPlugin];
