// Building the page: every text goes in as a text node (never as HTML), so nothing a job,
// a log line or a tag holds can run as script.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

export function statusBadge(text) {
  return h("span", { class: `badge status-${text.toLowerCase()}` }, text);
}

// "2026-11-22T10:00:00Z" -> "5 s ago", "3 min ago", "2 h ago", "4 d ago"
export function age(iso, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function bytes(size) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

// A job's progress: the mean of its tasks' (a finished task counts as 100 %).
export function jobProgress(job) {
  if (!job.tasks.length) return 0;
  const sum = job.tasks.reduce((total, task) => total + (task.status === 2 ? 100 : task.progress), 0);
  return Math.round((sum / job.tasks.length) * 10) / 10;
}

export function progressBar(value, label) {
  return h("span", { class: "progress" },
    h("progress", { max: 100, value, "aria-label": label }),
    h("span", { class: "progress-text" }, `${value.toFixed(0)} %`));
}

// A message in the view's status line (role=status, so screen readers announce it).
export function say(element, text, kind = "info") {
  element.textContent = text;
  element.dataset.kind = kind;
}
