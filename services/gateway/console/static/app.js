// The console's shell: sign in with an API key, then one view at a time by the URL's hash
// (#/jobs, #/jobs/ID, #/submit, #/bundles). Each view returns a function that stops what it
// started (its polling) when another view replaces it.

import { api, session, whenUnauthorized } from "./api.js";
import { bundlesView } from "./bundles.js";
import { h, say } from "./dom.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { submitView } from "./submit.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let me = null;
let unreachable = "";
let leave = () => {};

// A new view takes the focus to its heading when the user moved there (a link followed,
// in the page or in the header, or an action that changed the page), so that keyboard and
// screen-reader users start reading at its top. A view that set the focus itself keeps it.
function show(render) {
  const active = document.activeElement;
  const moved = active && active !== document.body && active !== main
    && (main.contains(active) || nav.contains(active));
  leave();
  main.replaceChildren();
  leave = render(main) || (() => {});
  const heading = main.querySelector("h1");
  if (heading && (moved || active === document.body) && !main.contains(document.activeElement)) {
    heading.focus();
  }
}

function signInView(message) {
  return (root) => {
    const key = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true,
      spellcheck: false, "aria-describedby": "sign-in-status" });
    const status = h("p", { id: "sign-in-status", class: "status-line", role: "status" });
    if (message) say(status, message, "error");
    const form = h("form", { class: "sign-in", onsubmit: async (event) => {
      event.preventDefault();
      session.signIn(key.value.trim());
      say(status, "Signing in…");
      const outcome = await start();
      if (outcome === "signed-in") return;
      say(status, outcome === "refused" ? "That API key was not accepted."
        : `The gateway did not answer: ${unreachable}`, "error");
      key.focus();
    } },
      h("label", { for: "api-key" }, "API key"), key,
      h("button", { type: "submit" }, "Sign in"),
      h("p", { class: "hint" }, "Your key is kept in this tab only, and forgotten when it closes. ",
        h("code", {}, "conveyor admin create-key USER"), " makes one; ",
        h("code", {}, "conveyor dev"), " prints one."));
    root.append(h("section", { class: "card" }, h("h1", { tabindex: -1 }, "Sign in"), status, form));
    key.focus();
  };
}

function signOut(message) {
  session.signOut();
  me = null;
  nav.hidden = true;
  who.hidden = true;
  show(signInView(message));
}

function route() {
  if (!me) return;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  for (const link of nav.querySelectorAll("a")) {
    const current = link.getAttribute("href") === `#/${parts[0] || "jobs"}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (parts[0] === "jobs" && parts[1]) show((root) => jobView(root, decodeURIComponent(parts[1])));
  else if (parts[0] === "submit") show((root) => submitView(root, me));
  else if (parts[0] === "bundles") show((root) => bundlesView(root, me));
  else show((root) => jobsView(root, new URLSearchParams(query)));
}

// Ask the API who this key belongs to. "signed-in"; "refused" (the key is forgotten);
// or "unreachable" (the key is kept: the gateway may be back in a moment).
async function start() {
  if (!session.key) return "refused";
  try {
    ({ data: me } = await api("GET", "/api/me"));
  } catch (error) {
    if (error.status === 401) {
      session.signOut();
      return "refused";
    }
    unreachable = error.message;
    return "unreachable";
  }
  document.getElementById("who-name").textContent = me.user;
  document.getElementById("nav-bundles").hidden =
    !me.organizations.some((org) => org.roles.includes("CONFIG"));
  nav.hidden = false;
  who.hidden = false;
  route();
  return "signed-in";
}

// The gateway did not answer when the tab opened: say so, and try again on request.
function unreachableView() {
  return (root) => {
    const status = h("p", { class: "status-line", role: "status" });
    say(status, `The gateway did not answer: ${unreachable}`, "error");
    const retry = h("button", { type: "button", onclick: async () => {
      say(status, "Trying again…");
      const outcome = await start();
      if (outcome === "refused") show(signInView("Your API key was refused; sign in again."));
      else if (outcome === "unreachable") say(status, `Still no answer: ${unreachable}`, "error");
    } }, "Try again");
    root.append(h("section", { class: "card" }, h("h1", { tabindex: -1 }, "Conveyor is not answering"),
      status, h("p", {}, retry, " ", h("button", { type: "button", class: "secondary",
        onclick: () => signOut() }, "Sign out"))));
    retry.focus();
  };
}

whenUnauthorized(() => { if (me) signOut("Your API key was refused; sign in again."); });
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
// The skip link moves the focus to the content without changing the hash the router reads.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});
const keptKey = Boolean(session.key);
const opened = await start();
if (opened === "unreachable") show(unreachableView());
else if (opened === "refused") show(signInView(keptKey ? "Your API key was refused; sign in again." : ""));
