// The notifications plugin: when a job this page watched ends after running long enough,
// a JupyterLab notification (toast + notification centre) says so, with an action that
// opens it in the Jobs panel (and, for a notebook job, one that opens the executed copy).
// Optionally a desktop notification too, while the page is hidden. It listens to the
// page's one event stream (../stream.js); the decisions are in ./notifications.js.

import { Notification } from "@jupyterlab/apputils";
import { ISettingRegistry } from "@jupyterlab/settingregistry";
import { LOG_PREFIX } from "../contract.js";
import { getStream } from "../stream.js";
import { COMMAND_SHOW_JOBS } from "./jobs.js";
import { claimJob, DEFAULT_SETTINGS, decideNotification, readSettings } from "./notifications.js";

/** @typedef {import("@jupyterlab/application").JupyterFrontEnd} JupyterFrontEnd */
/** @typedef {import("../contract.js").Job} Job */
/** @typedef {import("./notifications.js").NotifySettings} NotifySettings */
/** @typedef {import("./notifications.js").JobNotification} JobNotification */

export const NOTIFY_PLUGIN_ID = "jupyter-progress:notifications";
const AUTO_CLOSE_MS = 10_000;

/** The browser's own Notification (JupyterLab's has the same name). */
function desktopApi() {
  return /** @type {any} */ (globalThis).Notification ?? null;
}

/** Follows the stream and raises the notifications; one per page. */
export class JobNotifier {
  /** @param {JupyterFrontEnd} app */
  constructor(app) {
    this._app = app;
    /** @type {NotifySettings} */
    this.settings = { ...DEFAULT_SETTINGS };
    /** @type {Map<string, string>} the status this page last saw of each job */
    this._seen = new Map();
    this._tabId =
      globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    /** @type {(() => void) | null} */
    this._unsubscribe = null;
  }

  start() {
    const stream = getStream();
    if (!stream) return;
    this._unsubscribe = stream.subscribeAll((job, id) => this._onJob(job, id));
  }

  /** @param {NotifySettings} settings */
  setSettings(settings) {
    const turnedOn = settings.desktopNotifications && !this.settings.desktopNotifications;
    this.settings = settings;
    const api = desktopApi();
    // Ask only when the user turns the setting on, never on page load.
    if (turnedOn && api && api.permission === "default") {
      Promise.resolve(api.requestPermission()).catch((/** @type {unknown} */ error) =>
        console.warn(LOG_PREFIX, "desktop notifications: no permission", error)
      );
    }
  }

  /**
   * @param {Job | null} job
   * @param {string} id
   */
  _onJob(job, id) {
    const previous = this._seen.get(id);
    if (!job) {
      this._seen.delete(id);
      return;
    }
    this._seen.set(id, job.status);
    const notification = decideNotification(previous, job, this.settings);
    if (!notification) return;
    claimJob(id, this._tabId)
      .then((mine) => {
        if (mine) this.show(notification);
      })
      .catch((error) => console.error(LOG_PREFIX, "could not notify", error));
  }

  /** @param {JobNotification} notification */
  show(notification) {
    const commands = this._app.commands;
    const showJob = () =>
      void commands.execute(COMMAND_SHOW_JOBS, { jobId: notification.jobId });
    /** @type {import("@jupyterlab/apputils").Notification.IAction[]} */
    const actions = [{ label: "Show job", caption: "Open it in the Jobs panel", callback: showJob }];
    const path = notification.outputPath;
    if (path) {
      actions.push({
        label: "Open executed notebook",
        caption: path,
        callback: () => void commands.execute("docmanager:open", { path }),
      });
    }
    Notification.emit(notification.message, notification.type, {
      autoClose: notification.type === "error" ? false : AUTO_CLOSE_MS,
      actions,
      data: { jobId: notification.jobId },
    });
    this._desktop(notification, showJob);
  }

  /**
   * @param {JobNotification} notification
   * @param {() => void} showJob
   */
  _desktop(notification, showJob) {
    const api = desktopApi();
    if (!this.settings.desktopNotifications || !api || api.permission !== "granted") return;
    if (!globalThis.document?.hidden) return;
    try {
      const desktop = new api(notification.title, {
        body: notification.message,
        tag: `jupyter-progress-${notification.jobId}`,
      });
      desktop.onclick = () => {
        globalThis.focus?.();
        showJob();
        desktop.close();
      };
    } catch (error) {
      console.warn(LOG_PREFIX, "desktop notification failed", error);
    }
  }

  dispose() {
    this._unsubscribe?.();
    this._unsubscribe = null;
  }
}

/** @type {import("@jupyterlab/application").JupyterFrontEndPlugin<void>} */
export const notifyPlugin = {
  id: NOTIFY_PLUGIN_ID,
  description: "Notifications when a long job ends (settings: jupyter-progress notifications).",
  autoStart: true,
  optional: [ISettingRegistry],
  /**
   * @param {JupyterFrontEnd} app
   * @param {ISettingRegistry | null} registry
   */
  activate(app, registry) {
    const notifier = new JobNotifier(app);
    notifier.start();
    if (!registry) return;
    registry
      .load(NOTIFY_PLUGIN_ID)
      .then((settings) => {
        const apply = () =>
          notifier.setSettings(
            readSettings(/** @type {Record<string, unknown>} */ (settings.composite))
          );
        apply();
        settings.changed.connect(apply);
      })
      .catch((error) => console.warn(LOG_PREFIX, "notification settings not loaded", error));
  },
};
