// Job bundles, for users with the CONFIG role in an organization: list, search and create.

import { api } from "./api.js";
import { h, say } from "./dom.js";

export function bundlesView(root, me) {
  const configOrgs = me.organizations.filter((org) => org.roles.includes("CONFIG"));
  root.append(h("h1", { tabindex: -1 }, "Job bundles"));
  if (!configOrgs.length) {
    root.append(h("p", {}, "Job bundles are managed by users with the CONFIG role in an organization."));
    return () => {};
  }
  const statusLine = h("p", { class: "status-line", role: "status" });
  const search = h("input", { id: "bundle-search", type: "search", autocomplete: "off" });
  const body = h("tbody");
  const name = h("input", { id: "bundle-name", required: true, maxlength: 200, autocomplete: "off" });
  const org = h("select", { id: "bundle-org" },
    configOrgs.map((o) => h("option", { value: o.name }, o.name)));
  const errors = h("ul", { class: "field-errors", id: "bundle-errors", "aria-live": "assertive" });

  async function load({ keepMessage = false } = {}) {
    if (!keepMessage) say(statusLine, ""); // "Created bundle …" is about the list before
    const query = new URLSearchParams();
    if (search.value.trim()) query.set("search", search.value.trim());
    try {
      const { data } = await api("GET", `/api/job_bundle/?${query}`);
      body.replaceChildren(...data.map((b) => h("tr", {},
        h("td", { "data-label": "Name" }, b.name),
        h("td", { "data-label": "Organization" }, b.organization),
        h("td", { "data-label": "Created" }, h("time", { datetime: b.created }, b.created.replace("T", " ").replace("Z", " UTC"))),
        h("td", { "data-label": "Jobs" }, h("a", { href: `#/jobs?job_bundle_id=${encodeURIComponent(b.id)}` }, `Jobs in ${b.name}`)))));
      if (!data.length) body.append(h("tr", {}, h("td", { colspan: 4 }, "No bundles match.")));
    } catch (error) {
      say(statusLine, `Could not load bundles: ${error.message}`, "error");
    }
  }

  async function create(event) {
    event.preventDefault();
    errors.replaceChildren();
    try {
      const { data } = await api("POST", "/api/job_bundle/", { name: name.value, organization_name: org.value });
      say(statusLine, `Created bundle ${data.name}.`);
      name.value = "";
      await load({ keepMessage: true });
    } catch (error) {
      say(statusLine, `Not created: ${error.message}`, "error");
      errors.replaceChildren(...error.errors.map((e) => h("li", {}, h("code", {}, e.field), " ", e.message)));
    }
  }

  let typing = null;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(load, 250); });
  root.append(
    h("form", { class: "filters", role: "search", "aria-label": "Bundle search", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("label", { for: "bundle-search" }, "Search bundles"), search),
    statusLine,
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden" }, "Job bundles"),
      h("thead", {}, h("tr", {}, ["Name", "Organization", "Created", "Jobs"].map((c) => h("th", { scope: "col" }, c)))),
      body)),
    h("section", { "aria-labelledby": "new-bundle" },
      h("h2", { id: "new-bundle" }, "New bundle"),
      h("form", { class: "filters", onsubmit: create },
        h("span", { class: "field" }, h("label", { for: "bundle-name" }, "Bundle name"), name),
        h("span", { class: "field" }, h("label", { for: "bundle-org" }, "Organization"), org),
        h("button", { type: "submit" }, "Create bundle")),
      errors));
  load();
  return () => clearTimeout(typing);
}
