// What the JupyterLab notifications of ./notify.js decide, without DOM or JupyterLab
// (unit-tested in node): whether a job's change deserves a notification, its text, the
// settings, and the claim that keeps several tabs of one page from notifying twice.

import { elapsedSeconds, formatCount, formatDuration } from "../render.js";
import { isFinal } from "../contract.js";
import { executedCopyPath } from "./jobs.js";

/** @typedef {import("../contract.js").Job} Job */

/**
 * @typedef {{
 *   notifyAfterSeconds: number, notifyOn: "all" | "failures", desktopNotifications: boolean
 * }} NotifySettings
 * @typedef {{
 *   jobId: string, type: "success" | "error" | "info", title: string, message: string,
 *   outputPath: string | null
 * }} JobNotification
 */

/** @type {NotifySettings} */
export const DEFAULT_SETTINGS = {
  notifyAfterSeconds: 10,
  notifyOn: "all",
  desktopNotifications: false,
};

/** JupyterLab truncates a notification's message at 140 characters: the name goes first. */
export const MAX_MESSAGE = 140;
const MAX_NAME = 60;

/**
 * The settings as the registry gives them (any shape) made safe to use.
 * @param {Record<string, unknown> | null | undefined} raw
 * @returns {NotifySettings}
 */
export function readSettings(raw) {
  const after = Number(raw?.notifyAfterSeconds);
  return {
    notifyAfterSeconds:
      Number.isFinite(after) && after >= 0 ? after : DEFAULT_SETTINGS.notifyAfterSeconds,
    notifyOn: raw?.notifyOn === "failures" ? "failures" : "all",
    desktopNotifications: raw?.desktopNotifications === true,
  };
}

/** @param {string} text @param {number} max */
function clip(text, max) {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}

/** @param {Job} job */
function counts(job) {
  const p = job.progress || /** @type {any} */ ({});
  let text = `${formatCount(p.success ?? 0)} ok`;
  if (p.errors) text += `, ${formatCount(p.errors)} ${p.errors === 1 ? "error" : "errors"}`;
  if (p.total != null) text += ` of ${formatCount(p.total)}`;
  return text;
}

/**
 * The notification a job's change deserves, or null.
 *
 * Only a job this page has seen unfinished (`previousStatus` is a non-final status) and
 * now sees final notifies: a snapshot of jobs that ended while no page was open, or a
 * job first seen already final, never does.
 * @param {string | undefined} previousStatus  the status this page last saw, if any
 * @param {Job | null} job  its state now (null: removed)
 * @param {NotifySettings} settings
 * @returns {JobNotification | null}
 */
export function decideNotification(previousStatus, job, settings) {
  const seenRunning = !!previousStatus && !isFinal(/** @type {Job} */ ({ status: previousStatus }));
  if (!job || !seenRunning || !isFinal(job)) return null;
  if (settings.notifyOn === "failures" && job.status !== "failed") return null;
  const seconds = elapsedSeconds(job);
  if (seconds === null || seconds < settings.notifyAfterSeconds) return null;
  const name = clip(job.name || job.job_id, MAX_NAME);
  const took = formatDuration(seconds) || "0s";
  const outputPath = executedCopyPath(job);
  if (job.status === "completed") {
    return {
      jobId: job.job_id,
      type: "success",
      title: `${name} completed`,
      message: clip(`${name} completed: ${counts(job)} in ${took}`, MAX_MESSAGE),
      outputPath,
    };
  }
  if (job.status === "failed") {
    const sample = job.error_samples?.[0];
    let detail = job.message ? `: ${job.message}` : "";
    if (sample) detail += ` (${sample.item ? `${sample.item}: ` : ""}${sample.error})`;
    return {
      jobId: job.job_id,
      type: "error",
      title: `${name} failed`,
      message: clip(`${name} failed${detail}`, MAX_MESSAGE),
      outputPath,
    };
  }
  return {
    jobId: job.job_id,
    type: "info",
    title: `${name} cancelled`,
    message: clip(`${name} was cancelled after ${took} (${counts(job)})`, MAX_MESSAGE),
    outputPath,
  };
}

export const CLAIM_PREFIX = "jupyter-progress:notified:";
export const CLAIM_SETTLE_MS = 150;
const CLAIM_KEEP_MS = 24 * 3600 * 1000;

/**
 * Claim the right to notify of a job, once for every tab of this origin: write our tab's
 * id under the job's key unless another tab did, wait for concurrent writers to settle,
 * and keep the claim only if the key still holds our id (the last writer wins).
 * Without storage (private modes may refuse it) every tab notifies.
 * @param {string} jobId
 * @param {string} tabId
 * @param {{
 *   storage?: Storage | null, now?: () => number,
 *   sleep?: (ms: number) => Promise<void>, settleMs?: number
 * }} [env]
 * @returns {Promise<boolean>}
 */
export async function claimJob(jobId, tabId, env = {}) {
  const storage = env.storage === undefined ? safeLocalStorage() : env.storage;
  const now = env.now ?? Date.now;
  const sleep = env.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  if (!storage) return true;
  const key = CLAIM_PREFIX + jobId;
  try {
    if (storage.getItem(key) !== null) return false;
    storage.setItem(key, `${tabId} ${now()}`);
  } catch (error) {
    return true;
  }
  await sleep(env.settleMs ?? CLAIM_SETTLE_MS);
  let mine = true;
  try {
    mine = (storage.getItem(key) ?? "").split(" ")[0] === tabId;
    pruneClaims(storage, now());
  } catch (error) {
    mine = true;
  }
  return mine;
}

/**
 * Forget claims older than a day, so the storage does not grow with history.
 * @param {Storage} storage
 * @param {number} now
 */
export function pruneClaims(storage, now) {
  const stale = [];
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (!key?.startsWith(CLAIM_PREFIX)) continue;
    const at = Number((storage.getItem(key) ?? "").split(" ")[1]);
    if (!Number.isFinite(at) || now - at > CLAIM_KEEP_MS) stale.push(key);
  }
  for (const key of stale) storage.removeItem(key);
}

/** @returns {Storage | null} */
function safeLocalStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch (error) {
    return null;
  }
}
