// Small DOM helpers. Everything is built as nodes, never as HTML strings: text from the
// server or from the reader can then never become markup, and the CSP needs no exceptions.

/**
 * h("p", {class: "hint", id: "x"}, "text", childNode, [more, children])
 * Attributes: `class`, `for`, data- and aria- attributes and plain ones; `on<event>` are listeners;
 * `true` sets a boolean attribute, `false`/null/undefined leaves it out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else if (name === "checked" || name === "selected") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
/** A unique id for label/field and aria-describedby pairs. */
export const newId = (prefix = "f") => `${prefix}-${++uid}`;

// --- Markdown: the small subset the workbook's content uses -------------------------------

const INLINE = /(\\[\\`*_[\]()#+\-.!])|(\*\*([^*]+)\*\*)|(\*([^*\s][^*]*)\*)|(_([^_\s][^_]*)_)|(`([^`]+)`)|(\[([^\]]+)\]\(([^)\s]+)\))/g;

/** Inline Markdown (bold, italics, code, links, backslash escapes) as nodes. */
export function inline(text) {
  const out = [];
  let last = 0;
  for (const m of String(text).matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) out.push(m[1].slice(1));
    else if (m[2]) out.push(h("strong", {}, inline(m[3])));
    else if (m[4]) out.push(h("em", {}, inline(m[5])));
    else if (m[6]) out.push(h("em", {}, inline(m[7])));
    else if (m[8]) out.push(h("code", {}, m[9]));
    else if (m[10]) out.push(safeLink(m[11], m[12]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function safeLink(label, href) {
  if (/^https?:\/\//i.test(href)) return h("a", { href, rel: "noopener noreferrer", target: "_blank" }, inline(label));
  if (href.startsWith("/") && !href.startsWith("//")) return h("a", { href }, inline(label));
  return inline(label);
}

/** Block Markdown: paragraphs, bullet and numbered lists, quotes. */
export function markdown(text) {
  const blocks = String(text || "").replace(/\r\n?/g, "\n").split(/\n{2,}/);
  const nodes = [];
  for (const block of blocks) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    if (lines.length === 0) continue;
    if (lines.every((line) => /^\s*[-*+] /.test(line))) {
      nodes.push(h("ul", {}, lines.map((line) => h("li", {}, inline(line.replace(/^\s*[-*+] /, ""))))));
    } else if (lines.every((line) => /^\s*\d+[.)] /.test(line))) {
      nodes.push(h("ol", {}, lines.map((line) => h("li", {}, inline(line.replace(/^\s*\d+[.)] /, ""))))));
    } else if (lines.every((line) => line.startsWith(">"))) {
      nodes.push(h("blockquote", {}, markdown(lines.map((line) => line.replace(/^>\s?/, "")).join("\n"))));
    } else {
      nodes.push(h("p", {}, inline(lines.join(" "))));
    }
  }
  return nodes;
}

// --- Icons (drawn for DreamTree; stroke icons on a 24-unit grid) --------------------------

const ICONS = {
  waves: ["M2 8c2-2 4-2 6 0s4 2 6 0 4-2 6 0", "M2 14c2-2 4-2 6 0s4 2 6 0 4-2 6 0", "M2 20c2-2 4-2 6 0s4 2 6 0 4-2 6 0"],
  "refresh-cw": ["M20 5v5h-5", "M4 19v-5h5", "M19 10a8 8 0 0 0-14-3", "M5 14a8 8 0 0 0 14 3"],
  wallet: ["M3 7h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H3z", "M3 7l13-3v3", "M16 13h2"],
  "book-open": ["M2 5h7a3 3 0 0 1 3 3v12a2 2 0 0 0-2-2H2z", "M22 5h-7a3 3 0 0 0-3 3v12a2 2 0 0 1 2-2h8z"],
  users: ["M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M2 21v-1a6 6 0 0 1 12 0v1", "M16 3.5a4 4 0 0 1 0 7.5", "M18 14a6 6 0 0 1 4 6v1"],
  briefcase: ["M3 8h18v12H3z", "M8 8V5a1 1 0 0 1 1-1h6a1 1 0 0 1 1 1v3", "M3 13h18"],
  list: ["M9 6h12", "M9 12h12", "M9 18h12", "M4 6h.01", "M4 12h.01", "M4 18h.01"],
  "bar-chart": ["M4 20V10", "M10 20V4", "M16 20v-7", "M22 20H2"],
  "git-branch": ["M6 3v12", "M18 9a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M6 21a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M18 9a9 9 0 0 1-9 9"],
  "file-text": ["M6 2h9l5 5v15H6z", "M14 2v6h6", "M9 13h8", "M9 17h8"],
  lock: ["M5 11h14v10H5z", "M8 11V7a4 4 0 0 1 8 0v4"],
  check: ["M4 12l5 5L20 6"],
  circle: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z"],
  sun: ["M12 17a5 5 0 1 0 0-10 5 5 0 0 0 0 10z", "M12 1v2", "M12 21v2", "M4.2 4.2l1.4 1.4", "M18.4 18.4l1.4 1.4", "M1 12h2", "M21 12h2", "M4.2 19.8l1.4-1.4", "M18.4 5.6l1.4-1.4"],
  sparkle: ["M12 3l2 7 7 2-7 2-2 7-2-7-7-2 7-2z"],
};

export function icon(name, label) {
  const paths = ICONS[name] || ICONS.circle;
  const attrs = { class: "icon", viewBox: "0 0 24 24", focusable: "false" };
  if (label) Object.assign(attrs, { role: "img", "aria-label": label });
  else attrs["aria-hidden"] = "true";
  return h("svg:svg", attrs, paths.map((d) => h("svg:path", { d })));
}

// --- Forms: errors beside the form that caused them, busy buttons --------------------------

/** Shows an error inside `form` (next to its buttons) and keeps everything typed in it. */
export function showError(form, error) {
  const box = errorBox(form);
  clear(box).append(h("p", {}, error.detail || error.message || String(error)));
  const fieldErrors = (error.errors || []).filter((e) => e && e.message);
  if (fieldErrors.length > 1) box.append(h("ul", {}, fieldErrors.map((e) => h("li", {}, `${e.key || "body"}: ${e.message}`))));
  box.hidden = false;
  box.focus({ preventScroll: false });
}

export function clearError(form) {
  const box = form.querySelector(".form-error");
  if (box) {
    clear(box);
    box.hidden = true;
  }
}

function errorBox(form) {
  let box = form.querySelector(".form-error");
  if (!box) {
    box = h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
    const actions = form.querySelector(".form-actions");
    if (actions) actions.before(box);
    else form.append(box);
  }
  return box;
}

/** Runs `work` with the form's submit buttons disabled; errors land beside the form. */
export async function submitting(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  clearError(form);
  buttons.forEach((b) => (b.disabled = true));
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    showError(form, error);
    return undefined;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form.removeAttribute("aria-busy");
  }
}

/** A labelled field: label, the control, an optional hint wired with aria-describedby. */
export function field(label, control, hint) {
  const id = control.id || newId();
  control.id = id;
  const parts = [h("label", { for: id }, label)];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), hintId].filter(Boolean).join(" "));
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  parts.push(control);
  return h("div", { class: "field" }, parts);
}

/** Password managers pair a password with its account through a (hidden) username field. */
export const usernameField = (email) =>
  h("input", { type: "email", name: "username", autocomplete: "username", value: email || "", hidden: true });

/** A modal choice (an accessible <dialog>): resolves with the chosen button's value, or null. */
export function choose(title, text, choices) {
  return new Promise((resolve) => {
    const titleId = newId("dialog");
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      (Array.isArray(text) ? text : [text]).map((t) => h("p", {}, t)),
      h("div", { class: "form-actions" }, choices.map(([value, label, kind]) =>
        h("button", { type: "button", class: kind || "secondary", value, onclick: () => dialog.close(value) }, label))));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue && dialog.returnValue !== "cancel" ? dialog.returnValue : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export const confirmChoice = async (title, text, yes, kind = "danger") =>
  (await choose(title, text, [["cancel", "Cancel", "secondary"], ["yes", yes, kind]])) === "yes";

/** Local, readable dates for timestamps from the server. */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function progressBar(percent, label) {
  const bar = h("span", { class: "progress-fill" });
  bar.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(Math.round(percent)), "aria-label": label }, bar);
}
