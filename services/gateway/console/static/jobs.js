// The jobs page: newest first, filtered by status and tag, a page at a time; polled with
// backoff (every 2 s while something changes, up to every 30 s while nothing does).

import { api, STATUSES } from "./api.js";
import { age, h, jobProgress, progressBar, say, statusBadge } from "./dom.js";
import { Poller } from "./poll.js";

const PAGE_SIZE = 20;

export function jobsView(root, params) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const status = params.get("status") || "";
  const tag = params.get("tag") || "";
  const bundle = params.get("job_bundle_id") || "";

  const statusSelect = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "Any"),
    STATUSES.map((text) => h("option", { value: text, selected: text === status }, text)));
  const tagInput = h("input", { id: "filter-tag", name: "tag", value: tag, autocomplete: "off" });
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs",
    onsubmit: (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      if (statusSelect.value) query.set("status", statusSelect.value);
      if (tagInput.value.trim()) query.set("tag", tagInput.value.trim());
      if (bundle) query.set("job_bundle_id", bundle);
      location.hash = `#/jobs?${query}`;
    } },
    h("span", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h("span", { class: "field" }, h("label", { for: "filter-tag" }, "Tag"), tagInput),
    h("button", { type: "submit" }, "Filter"));

  const body = h("tbody");
  const table = h("table", { class: "jobs" },
    h("caption", { class: "visually-hidden" }, "Your jobs, newest first"),
    h("thead", {}, h("tr", {}, ["Job", "Tags", "Region", "Status", "Progress", "Age"]
      .map((name) => h("th", { scope: "col" }, name)))),
    body);
  const status_line = h("p", { class: "status-line", role: "status" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  // A bundle filter comes from the Bundles page's links; it is shown, and can be dropped.
  let scope = "";
  if (bundle) {
    const everything = new URLSearchParams(params);
    everything.delete("job_bundle_id");
    everything.delete("page");
    scope = h("p", { class: "scope" }, "Only the jobs of job bundle ", h("code", {}, bundle), ". ",
      h("a", { href: `#/jobs?${everything}` }, "Show jobs of every bundle"));
  }
  root.append(
    h("div", { class: "view-head" },
      h("h1", { tabindex: -1 }, bundle ? "Jobs in a bundle" : "Jobs"),
      h("a", { class: "button", href: "#/submit" }, "Submit a job")),
    filters, scope, status_line, h("div", { class: "table-wrap" }, table), pager);

  let shown = "";
  let results = [];
  const query = new URLSearchParams({ page, page_size: PAGE_SIZE });
  if (status) query.set("status", status);
  if (tag) query.set("tag", tag);
  if (bundle) query.set("job_bundle_id", bundle);

  function link(number, text) {
    const target = new URLSearchParams(params);
    target.set("page", number);
    return h("a", { class: "button secondary", href: `#/jobs?${target}` }, text);
  }

  function render(data) {
    results = data.results;
    // Rows are rebuilt when anything in them changes: the focus stays on the same job's link.
    const focused = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.closest("tr")?.dataset.job : null;
    body.replaceChildren(...results.map((job) => h("tr", { "data-job": job.id },
      h("td", { "data-label": "Job" }, h("a", { href: `#/jobs/${job.id}` }, job.id)),
      h("td", { "data-label": "Tags" }, job.tags.map((t) => h("span", { class: "tag" }, t))),
      h("td", { "data-label": "Region" }, job.region),
      h("td", { "data-label": "Status" }, statusBadge(job.status_text)),
      h("td", { "data-label": "Progress" }, progressBar(jobProgress(job), `Progress of job ${job.id}`)),
      h("td", { "data-label": "Age", class: "age", "data-created": job.created }, age(job.created)))));
    if (!results.length) {
      body.append(h("tr", {}, h("td", { colspan: 6 }, "No jobs match. Submit one, or change the filter.")));
    }
    if (focused) body.querySelector(`tr[data-job="${CSS.escape(focused)}"] a`)?.focus();
    const pages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
    pager.replaceChildren(
      data.previous ? link(page - 1, "Previous page") : "",
      h("span", {}, `Page ${page} of ${pages} (${data.count} jobs)`),
      data.next ? link(page + 1, "Next page") : "");
  }

  const poller = new Poller(async () => {
    try {
      const { data } = await api("GET", `/api/jobs/?${query}`);
      const last = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
      if (page > last) { // past the end (jobs went, or a typed URL): the last page instead
        const target = new URLSearchParams(params);
        target.set("page", last);
        location.replace(`#/jobs?${target}`);
        return { done: true };
      }
      // Compared without the outputs' presigned URLs, which differ on every answer.
      const snapshot = JSON.stringify([data.count, data.results.map(
        (job) => [job.id, job.status, jobProgress(job), job.tags, job.region])]);
      const changed = snapshot !== shown;
      if (changed) { shown = snapshot; render(data); }
      else for (const cell of body.querySelectorAll("td.age")) cell.textContent = age(cell.dataset.created);
      say(status_line, "");
      return { changed };
    } catch (error) {
      if (error.status === 400) { // a filter the API refuses (a typed URL): asking again won't help
        const why = error.errors.map((e) => `${e.field}: ${e.message}`).join("; ") || error.message;
        say(status_line, `Cannot list jobs with this filter (${why}).`, "error");
        return { done: true };
      }
      say(status_line, `Could not load jobs: ${error.message}. Retrying.`, "error");
      return { error, wait: (error.retryAfter || 0) * 1000 };
    }
  }, { min: 2000, max: 30000 });
  poller.start();
  return () => poller.stop();
}
