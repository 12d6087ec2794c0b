// Today: the Daily Dos (resume card first, then due reminders) in the reader's own time zone,
// and how far along the workbook is.

import { get, seg } from "../api.js";
import { h, icon, progressBar } from "../dom.js";

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

async function dailyDos(tz) {
  if (!tz) return get("/api/daily-dos");
  try {
    return await get(`/api/daily-dos?tz=${seg(tz)}`);
  } catch (error) {
    // A time zone the server does not know: UTC days are still better than no Daily Dos.
    if (error.status === 422) return get("/api/daily-dos");
    throw error;
  }
}

export async function homeView({ app }) {
  const [dos, outline] = await Promise.all([dailyDos(browserTimeZone()), get("/api/workbook")]);
  const { answered, required, percent } = outline.progress;
  const fresh = answered === 0;
  return h("section", { class: "home" },
    h("h1", {}, fresh ? "Welcome to DreamTree" : "Today"),
    fresh ? welcome(app) : null,
    h("section", { "aria-labelledby": "daily-dos-title", class: "panel" },
      h("h2", { id: "daily-dos-title" }, "Your Daily Dos"),
      dos.length
        ? h("ul", { class: "daily-dos" }, dos.map(dailyDo))
        : h("p", {}, "Nothing due today. Enjoy the breathing room.")),
    h("section", { "aria-labelledby": "progress-title", class: "panel" },
      h("h2", { id: "progress-title" }, "Your progress"),
      h("p", {}, outline.next_exercise_id === null && answered >= required
        ? "You've answered every exercise in the workbook. Come back to any of them whenever you like."
        : `You've answered ${answered} of ${required} exercises (${percent}%).`),
      progressBar(percent, "Workbook progress"),
      h("p", {}, h("a", { href: "/workbook" }, "See the whole workbook"))));
}

function welcome(app) {
  return h("div", { class: "intro" },
    h("p", {}, "A calm, self-paced workbook for thinking through your working life: where you stand, what you want, and what to try next."),
    h("p", {}, "There's nothing to sign up for. Your workbook starts here, in this browser. ",
      app.me && app.me.is_anonymous ? ["When you're ready, you can ", h("a", { href: "/account" }, "save it"), " to open it anywhere."] : null));
}

function dailyDo(item) {
  const titleId = `do-${item.id}`.replace(/[^a-zA-Z0-9_-]/g, "-");
  return h("li", { class: `daily-do daily-do-${item.type}`, "aria-labelledby": titleId },
    h("span", { class: "daily-do-icon" }, icon(item.type === "resume" || item.type === "workbook" ? "book-open" : "sun")),
    h("div", { class: "daily-do-body" },
      h("h3", { id: titleId }, item.title),
      item.subtitle ? h("p", {}, item.subtitle) : null),
    item.action ? h("a", { class: "button", href: item.action.href }, item.action.label) : null);
}
