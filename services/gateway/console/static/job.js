// A job's page: its tasks with status and progress, outputs, metrics once final, each task's
// log tailing live, and Restart, Resubmit and Stop where they apply.
//
// The job itself is polled (every second while it changes, backing off to every 10 s) until
// it is final. The log routes are limited per API key to 20 calls a minute and 1000 a day,
// so a task's log is read only while its log panel is open (opened by itself for a running
// or failed task, or the only task), at most every 4 s and backing off to every 60 s while
// no lines come; it stops for good once the task is final and its last lines are read, waits
// as long as Retry-After says on a 429, and waits for the window to reset when
// RateLimit-Remaining runs low.

import { api, FINAL } from "./api.js";
import { age, bytes, h, jobProgress, progressBar, say, statusBadge } from "./dom.js";
import { Poller } from "./poll.js";

const SETTLE_MS = 5000; // log lines reach the logger in batches, shortly after a task ends
const LOW_REMAINING = 2;
const MESSAGE_MS = 5000;

class LogTail {
  constructor(jobId, taskId, output, status) {
    Object.assign(this, { jobId, taskId, output, status });
    this.cursor = null;
    this.finalSince = null;
    this.complete = false;
    this.lines = 0;
    this.poller = new Poller(() => this.read(), { min: 4000, max: 60000, factor: 2 });
  }

  start() { if (!this.complete) this.poller.start(); }
  stop() { this.poller.stop(); }

  // `finished`: when the task ended (ISO), or null while it runs.
  setFinal(final, finished) {
    if (final && this.finalSince === null) {
      this.finalSince = finished ? Date.parse(finished) : Date.now();
      if (this.poller.running) this.poller.poke();
    } else if (!final && this.finalSince !== null) { // restarted
      this.finalSince = null;
      this.complete = false;
    }
  }

  async read() {
    const startedAt = Date.now();
    const wasFinal = this.finalSince !== null;
    const query = new URLSearchParams({ limit: 1000 });
    if (this.cursor) query.set("cursor", this.cursor);
    try {
      const { data, headers } = await api(
        "GET", `/api/jobs/${encodeURIComponent(this.jobId)}/tasks/${this.taskId}/logs/?${query}`);
      this.append(data.logs);
      this.cursor = data.cursor || this.cursor;
      if (data.next) return { changed: true, wait: 1000 };
      if (wasFinal && (!data.logs.length || startedAt - this.finalSince > SETTLE_MS)) {
        this.complete = true;
        say(this.status, this.lines ? `${this.lines} lines; the task has ended.` : "No log lines.");
        return { done: true };
      }
      say(this.status, wasFinal ? "Reading the last lines…" : "Following the log…");
      const remaining = Number(headers.get("RateLimit-Remaining"));
      const reset = Number(headers.get("RateLimit-Reset"));
      const wait = headers.has("RateLimit-Remaining") && remaining <= LOW_REMAINING ? reset * 1000 : 0;
      return { changed: data.logs.length > 0, wait };
    } catch (error) {
      if (error.status === 429) {
        say(this.status, `Log requests are rate-limited; trying again in ${error.retryAfter || 60} s.`, "warning");
        return { error, wait: (error.retryAfter || 60) * 1000 };
      }
      say(this.status, `Could not read the log: ${error.message}`, "error");
      return error.status === 404 ? { done: true } : { error };
    }
  }

  append(entries) {
    if (!entries.length) return;
    const atBottom = this.output.scrollHeight - this.output.scrollTop - this.output.clientHeight < 8;
    this.output.append(...entries.map((entry) => h("div", { class: "log-line" },
      h("time", { datetime: new Date(entry.timestamp * 1000).toISOString() },
        new Date(entry.timestamp * 1000).toLocaleTimeString()),
      " ", entry.message)));
    this.lines += entries.length;
    if (atBottom) this.output.scrollTop = this.output.scrollHeight;
  }
}

function taskItem(jobId, first) {
  const id = first.id;
  const badge = h("span");
  const bar = h("div", { class: "task-progress" });
  const error = h("p", { class: "task-error", hidden: true });
  const outputs = h("ul", { class: "outputs", "aria-label": `Outputs of task ${id}` });
  const logStatus = h("p", { class: "log-status", role: "status" });
  const output = h("div", { class: "log", role: "log", tabindex: 0, "aria-label": `Log of task ${id}` });
  const summary = h("summary", {}, `Log of task ${id}`);
  const details = h("details", { class: "log-panel" }, summary, logStatus, output);
  const tail = new LogTail(jobId, id, output, logStatus);
  let chosen = false; // the user opened or closed the panel: leave it as they want it
  summary.addEventListener("click", () => { chosen = true; });
  details.addEventListener("toggle", () => (details.open ? tail.start() : tail.stop()));
  let shownOutputs = "";
  const element = h("li", { class: "task", "data-task": id },
    h("div", { class: "task-head" }, h("h3", {}, `Task ${id}: ${first.tool}`), badge),
    bar, error, outputs, details);

  function update(task, only) {
    badge.replaceChildren(statusBadge(task.status_text));
    const progress = task.status === 2 ? 100 : task.progress;
    bar.replaceChildren(progressBar(progress, `Progress of task ${id}`));
    error.hidden = !task.error;
    error.textContent = task.error ? `${task.error.class}: ${task.error.message}` : "";
    const paths = JSON.stringify(task.outputs.map((o) => [o.path, o.size]));
    if (paths !== shownOutputs) { // links are re-made only when the files change
      shownOutputs = paths;
      outputs.replaceChildren(...task.outputs.map((o) => h("li", {},
        // A new tab: the file is on the storage's origin, where `download` does not apply,
        // and opening it here would leave the console.
        o.url ? h("a", { href: o.url, target: "_blank", rel: "noopener noreferrer",
          title: "Opens in a new tab" }, o.path)
          : h("span", {}, `${o.bucket ? `s3://${o.bucket}/` : ""}${o.path}`),
        ` (${bytes(o.size)})`)));
    }
    tail.setFinal(FINAL.has(task.status), task.finished);
    if (!chosen && !details.open && (task.status === 1 || task.status === 3 || only)) {
      details.open = true; // the toggle event starts the tail
    } else if (details.open) {
      tail.start(); // again after a restart; nothing when it runs or has read everything
    }
  }
  return { element, update, stop: () => tail.stop() };
}

export function jobView(root, jobId) {
  const statusLine = h("p", { class: "status-line", role: "status" });
  const summary = h("dl", { class: "summary" });
  // Hidden until the job is read: which apply depends on its status.
  const buttons = {
    restart: h("button", { type: "button", hidden: true, onclick: () => act("restart") }, "Restart"),
    resubmit: h("button", { type: "button", hidden: true, onclick: () => act("resubmit") }, "Resubmit"),
    stop: h("button", { type: "button", class: "danger", hidden: true, onclick: () => act("stop") }, "Stop"),
  };
  const tasksList = h("ol", { class: "tasks" });
  const metricsList = h("dl", { class: "summary" });
  const metrics = h("section", { class: "metrics", hidden: true, "aria-labelledby": "metrics-title" },
    h("h2", { id: "metrics-title" }, "Metrics"), metricsList);
  root.append(
    h("p", {}, h("a", { href: "#/jobs" }, "All jobs")),
    h("div", { class: "view-head" }, h("h1", { tabindex: -1 }, `Job ${jobId}`),
      h("div", { class: "actions" }, Object.values(buttons))),
    statusLine, summary,
    h("section", { "aria-labelledby": "tasks-title" }, h("h2", { id: "tasks-title" }, "Tasks"), tasksList),
    metrics);

  const tasks = new Map();
  let shown = "";
  let metricsFor = null;

  function field(name, ...value) {
    return [h("dt", {}, name), h("dd", {}, ...value)];
  }

  function render(job) {
    summary.replaceChildren(
      ...field("Status", statusBadge(job.status_text)),
      ...field("Progress", progressBar(jobProgress(job), "Progress of the job")),
      ...field("Tags", job.tags.length ? job.tags.map((t) => h("span", { class: "tag" }, t)) : "none"),
      ...field("Region", job.region),
      ...field("Organization", job.organization || ""),
      ...(job.job_bundle ? field("Bundle", job.job_bundle) : []),
      ...field("Created", h("time", { datetime: job.created, title: job.created }, age(job.created))),
      ...(job.finished ? field("Finished", h("time", { datetime: job.finished, title: job.finished }, age(job.finished))) : []));
    const final = FINAL.has(job.status);
    buttons.stop.hidden = final;
    buttons.restart.hidden = !final;
    buttons.resubmit.hidden = !final;
    for (const task of job.tasks) {
      if (!tasks.has(task.id)) {
        const item = taskItem(jobId, task);
        tasks.set(task.id, item);
        tasksList.append(item.element);
      }
      tasks.get(task.id).update(task, job.tasks.length === 1);
    }
    if (job.status !== 2 && job.status !== 3) metrics.hidden = true;
  }

  async function showMetrics(job) {
    const key = `${job.id}:${job.finished}`;
    if (metricsFor === key) return;
    const { data } = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}/metrics/`);
    metricsFor = key;
    const number = (value) => Number(value).toLocaleString("en", { maximumSignificantDigits: 3 });
    metricsList.replaceChildren(
      ...field("Compute units", number(data.cus)),
      ...field("Video minutes in", number(data.video_minutes_in)),
      ...field("Video minutes out", number(data.video_minutes_out)),
      ...field("GB in", number(data.gb_in)),
      ...field("GB out", number(data.gb_out)));
    metrics.hidden = false;
  }

  const poller = new Poller(async () => {
    try {
      const { data: job } = await api("GET", `/api/jobs/${encodeURIComponent(jobId)}/`);
      const snapshot = JSON.stringify([job.status, job.finished, job.tasks.map(
        (t) => [t.status, t.progress, t.attempts, t.outputs.length])]);
      const changed = snapshot !== shown;
      shown = snapshot;
      render(job);
      if (job.status === 2 || job.status === 3) await showMetrics(job);
      // An error is over once the job is read again; "Job restarted." once the job has
      // moved on, a few seconds later.
      const saidAt = Number(statusLine.dataset.saidAt || 0);
      if (statusLine.dataset.kind === "error" || (changed && saidAt && Date.now() - saidAt > MESSAGE_MS)) {
        say(statusLine, "");
        delete statusLine.dataset.saidAt;
      }
      return { changed, done: FINAL.has(job.status) };
    } catch (error) {
      say(statusLine, error.status === 404 ? `There is no job ${jobId} that you can see.`
        : `Could not load the job: ${error.message}. Retrying.`, "error");
      return error.status === 404 ? { done: true } : { error, wait: (error.retryAfter || 0) * 1000 };
    }
  }, { min: 1000, max: 10000 });

  async function act(action) {
    for (const button of Object.values(buttons)) button.disabled = true;
    try {
      const { data, status } = await api("POST", `/api/jobs/${encodeURIComponent(jobId)}/${action}/`);
      if (action === "resubmit") {
        location.hash = `#/jobs/${data.id}`;
        return;
      }
      render(data);
      // 202: the stop waits for the broker; the poller shows the job once it is stopped.
      say(statusLine, action !== "stop" ? "Job restarted."
        : status === 202 ? "Stop accepted; the job stops once the broker is back." : "Job stopped.");
      statusLine.dataset.saidAt = String(Date.now());
      poller.start();
      poller.poke();
    } catch (error) {
      say(statusLine, `${action[0].toUpperCase()}${action.slice(1)} failed: ${error.message}`, "error");
    } finally {
      for (const button of Object.values(buttons)) button.disabled = false;
      // The button used may now be hidden (Stop once stopped): the focus goes to the next
      // action that applies, or the heading, not to the page's start.
      if (!root.contains(document.activeElement) || document.activeElement.hidden) {
        (Object.values(buttons).find((button) => !button.hidden) || root.querySelector("h1"))?.focus();
      }
    }
  }

  poller.start();
  return () => {
    poller.stop();
    for (const item of tasks.values()) item.stop();
  };
}
