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
let leave = () => {};

// A new view takes the focus to its heading when the focus was in the old one (a link
// followed), so that keyboard and screen-reader users start reading at its top.
function show(render) {
  const hadFocus = main.contains(document.activeElement) && document.activeElement !== main;
  leave();
  main.replaceChildren();
  leave = render(main) || (() => {});
  const heading = main.querySelector("h1");
  if (heading && hadFocus && !main.contains(document.activeElement)) heading.focus();
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
      if (await start()) return;
      say(status, "That API key was not accepted.", "error");
      key.focus();
    } },
      h("label", { for: "api-key" }, "API key"), key,
      h("button", { type: "submit" }, "Sign in"),
      h("p", { class: "hint" }, "Your key is kept in this tab only, and forgotten when it closes. ",
        "`conveyor admin create-key USER` makes one; `conveyor dev` prints one."));
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
  else if (parts[0] === "submit") show(submitView);
  else if (parts[0] === "bundles") show((root) => bundlesView(root, me));
  else show((root) => jobsView(root, new URLSearchParams(query)));
}

// Ask the API who this key belongs to; true when it was accepted.
async function start() {
  if (!session.key) return false;
  try {
    ({ data: me } = await api("GET", "/api/me"));
  } catch (error) {
    if (error.status !== 401) signOut(`Could not sign in: ${error.message}`);
    return false;
  }
  document.getElementById("who-name").textContent = me.user;
  document.getElementById("nav-bundles").hidden =
    !me.organizations.some((org) => org.roles.includes("CONFIG"));
  nav.hidden = false;
  who.hidden = false;
  route();
  return true;
}

whenUnauthorized(() => { if (me) signOut("Your API key was refused; sign in again."); });
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
if (!(await start())) show(signInView());
