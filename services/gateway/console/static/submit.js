// Submitting a job: a file dropped on the drop zone or chosen with the file input is put in
// the JSON box and sent at once; JSON typed or pasted there is sent with "Submit job". The
// text goes to the API as it is, and a 400's field errors are listed beside it.

import { api } from "./api.js";
import { h, say } from "./dom.js";

const EXAMPLE = {
  tags: ["console"],
  tasks: [{ tool: "debug:log", parameters: { messages: ["hello from the console"] } }],
};

// `me`: who is signed in. A member of several organizations must name one; the example does.
function newKey() {
  const random = new Uint8Array(16);
  crypto.getRandomValues(random); // available outside secure contexts too, unlike randomUUID
  return `console-${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function submitView(root, me) {
  const text = h("textarea", {
    id: "job-json", name: "job", rows: 16, spellcheck: false, autocomplete: "off",
    "aria-describedby": "job-errors-title job-errors",
  });
  const organizations = me ? me.organizations : [];
  text.value = JSON.stringify(organizations.length > 1
    ? { organization: organizations[0].name, ...EXAMPLE } : EXAMPLE, null, 2);
  const errorsTitle = h("h2", { id: "job-errors-title", hidden: true }, "The API refused this job");
  const errors = h("ul", { id: "job-errors", class: "field-errors", "aria-live": "assertive" });
  const statusLine = h("p", { class: "status-line", role: "status" });
  const fileInput = h("input", { type: "file", id: "job-file", accept: ".json,application/json" });
  const button = h("button", { type: "submit" }, "Submit job");

  const zone = h("div", { class: "dropzone", role: "region", "aria-labelledby": "drop-title" },
    h("h2", { id: "drop-title" }, "Drop a job file"),
    h("p", {}, "Drag a job's JSON file here to submit it, or choose one:"),
    h("label", { for: "job-file", class: "file-label" }, "Job file"), fileInput);

  function showErrors(list) {
    errorsTitle.hidden = !list.length;
    errors.replaceChildren(...list.map((e) => h("li", {},
      e.field ? [h("code", { class: "field" }, e.field), " "] : "", h("span", {}, e.message))));
  }

  // The same text sent again after no answer reuses its Idempotency-Key: if the first try
  // did reach the gateway, the job it made is answered again instead of a second one. Any
  // answer ends the attempt, so the same job sent on purpose twice makes two jobs.
  let attempt = { text: null, key: null };

  async function submit() {
    showErrors([]);
    button.disabled = true;
    say(statusLine, "Submitting…");
    if (attempt.text !== text.value) attempt = { text: text.value, key: newKey() };
    try {
      const { data } = await api("POST", "/api/jobs/", text.value, { "Idempotency-Key": attempt.key });
      attempt = { text: null, key: null };
      say(statusLine, `Submitted job ${data.id}.`);
      location.hash = `#/jobs/${data.id}`;
    } catch (error) {
      if (error.status !== 0) attempt = { text: null, key: null };
      say(statusLine, error.status === 0
        ? `No answer from the gateway (${error.message}); the job may have been submitted. Submit again to make sure: it will not be submitted twice.`
        : `Not submitted: ${error.message}`, "error");
      // A 4xx is the API's verdict on the job; anything else (no answer, 5xx) is not.
      errorsTitle.textContent = error.status >= 400 && error.status < 500
        ? "The API refused this job" : "The job could not be sent";
      showErrors(error.errors.length ? error.errors : [{ field: "", message: error.message }]);
      text.focus();
    } finally {
      button.disabled = false;
    }
  }

  async function takeFile(file) {
    if (!file) return;
    text.value = await file.text();
    say(statusLine, `Read ${file.name}.`);
    await submit();
  }

  fileInput.addEventListener("change", () => takeFile(fileInput.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    takeFile(event.dataTransfer && event.dataTransfer.files[0]);
  });

  const form = h("form", { class: "submit-form", onsubmit: (event) => { event.preventDefault(); submit(); } },
    h("div", { class: "editor" },
      h("label", { for: "job-json" }, "Job JSON"), text,
      h("p", { class: "hint" }, "Paste or edit a job here: ", h("code", {}, '{"tasks": [{"tool", "parameters"}]}'),
        ", with optional region, tags, organization and job_bundle."),
      button),
    h("div", { class: "errors-panel" }, errorsTitle, errors));

  root.append(h("h1", { tabindex: -1 }, "Submit a job"), zone, statusLine, form);
  return () => {};
}
