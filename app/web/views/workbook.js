// The workbook: the outline with progress, and one exercise at a time with its answer form.
// Answers are stored as {answer: "..."} (the spec's export example); an answer of another
// shape (from an import) is shown as text and saved back in that form when edited.

import { get, put, seg } from "../api.js";
import { field, h, icon, inline, markdown, newId, progressBar, submitting } from "../dom.js";

const STATUS_TEXT = { answered: "Answered", available: "Ready for you", locked: "Locked" };
const STATUS_ICON = { answered: "check", available: "circle", locked: "lock" };

export async function outlineView() {
  const outline = await get("/api/workbook");
  const { answered, required, percent } = outline.progress;
  return h("section", { class: "outline" },
    h("h1", {}, "Your workbook"),
    h("p", {}, `${answered} of ${required} exercises answered (${percent}%).`),
    progressBar(percent, "Whole workbook"),
    outline.next_exercise_id
      ? h("p", {}, h("a", { class: "button", href: `/workbook/${seg(outline.next_exercise_id)}` }, answered ? "Continue where you left off" : "Start the first exercise"))
      : null,
    outline.parts.map(part));
}

function part(p) {
  const id = newId("part");
  return h("section", { class: "part", "aria-labelledby": id },
    h("h2", { id }, p.title),
    p.modules.map(module));
}

function module(m) {
  const id = newId("module");
  const required = m.exercises.filter((e) => e.is_required);
  const done = required.filter((e) => e.status === "answered").length;
  const percent = required.length ? Math.floor((100 * done) / required.length) : 100;
  return h("section", { class: "module panel", "aria-labelledby": id },
    h("div", { class: "module-head" },
      h("h3", { id }, m.title),
      h("span", { class: m.completed ? "badge badge-done" : "badge" },
        m.completed ? "Complete" : `${done} of ${required.length} done`)),
    progressBar(percent, `Progress in ${m.title}`),
    h("ol", { class: "exercise-list" }, m.exercises.map(exerciseItem)));
}

function exerciseItem(e) {
  const title = e.status === "locked"
    ? h("span", { class: "exercise-title" }, e.title)
    : h("a", { class: "exercise-title", href: `/workbook/${seg(e.full_exercise_id)}` }, e.title);
  return h("li", { class: `exercise-item status-${e.status}`, "data-exercise": e.full_exercise_id },
    icon(STATUS_ICON[e.status]),
    title,
    h("span", { class: "status" }, STATUS_TEXT[e.status] || e.status, e.is_required ? "" : " · optional"));
}

export function answerText(saved) {
  if (!saved) return "";
  const value = saved.response;
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (typeof value.answer === "string") return value.answer;
    if (typeof value.text === "string") return value.text;
  }
  return value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
}

export async function exerciseView({ params, app }) {
  const [id] = params;
  let exercise;
  try {
    exercise = await get(`/api/exercises/${seg(id)}`);
  } catch (error) {
    if (error.status === 403 && error.code === "exercise_locked") return locked();
    if (error.status === 404) {
      return h("section", {}, h("h1", {}, "We couldn't find that exercise"),
        h("p", {}, "It may have moved in a newer edition of the workbook."),
        h("p", {}, h("a", { href: "/workbook" }, "Open the workbook")));
    }
    throw error;
  }
  return exercisePage(exercise, app);
}

async function locked() {
  let next = null;
  try {
    next = (await get("/api/workbook")).next_exercise_id;
  } catch {
    next = null;
  }
  return h("section", {},
    h("h1", {}, h("span", { class: "inline-icon" }, icon("lock")), "This exercise is still locked"),
    h("p", {}, "Exercises open one after another, so each builds on the last. This one opens once you have answered the ones before it."),
    h("p", {}, next ? h("a", { class: "button", href: `/workbook/${seg(next)}` }, "Go to your next exercise") : null,
      " ", h("a", { href: "/workbook" }, "See the whole workbook")));
}

function block(b, promptIds) {
  const type = b.content_type;
  const body = markdown(b.content_text);
  if (type === "prompt") {
    const id = newId("prompt");
    promptIds.push(id);
    return h("div", { class: "block block-prompt", id }, h("p", { class: "block-label" }, icon("sparkle"), "Your prompt"), body);
  }
  if (type === "reflection") return h("aside", { class: "block block-reflection" }, h("p", { class: "block-label" }, "To reflect on"), body);
  if (type === "transition") return h("div", { class: "block block-transition" }, h("p", { class: "block-label" }, "Up next"), body);
  if (type === "celebration") return h("div", { class: "block block-celebration" }, h("p", { class: "block-label" }, icon("sparkle"), "Well done"), body);
  return h("div", { class: `block block-${type}` }, body);
}

function exercisePage(exercise, app) {
  const blocks = [...exercise.blocks].sort((a, b) => a.display_order - b.display_order);
  const lastPrompt = blocks.map((b) => b.content_type).lastIndexOf("prompt");
  const cut = lastPrompt === -1 ? blocks.length : lastPrompt + 1;
  // Celebrations belong to a finished exercise: shown once it has an answer.
  const celebrate = (b) => b.content_type !== "celebration" || exercise.response;
  const promptIds = [];
  const before = blocks.slice(0, cut).filter(celebrate).map((b) => block(b, promptIds));
  const after = blocks.slice(cut).filter(celebrate).map((b) => block(b, promptIds));

  const wasAnswered = Boolean(exercise.response);
  const textarea = h("textarea", {
    name: "answer", rows: "9", required: exercise.is_required, "aria-describedby": promptIds.join(" ") || null,
    value: answerText(exercise.response),
  });
  const saveButton = h("button", { type: "submit" }, wasAnswered ? "Save changes" : "Save and continue");
  const saved = h("p", { class: "saved-note", role: "status" });
  const form = h("form", { class: "answer-form", novalidate: false },
    field("Your answer", textarea, exercise.is_required ? null : "This one is optional: you can leave it empty and move on."),
    h("div", { class: "form-actions" }, saveButton, saved));

  let answered = wasAnswered;
  const original = exercise.response ? exercise.response.response : null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saved.textContent = "";
    const text = textarea.value;
    const response = original && typeof original === "object" && !Array.isArray(original) && "answer" in original
      ? { ...original, answer: text } : { answer: text };
    const result = await submitting(form, () => put(`/api/exercises/${seg(exercise.full_exercise_id)}/response`, { response }));
    if (!result) return; // the error is shown beside the form; the answer stays in it
    if (answered) {
      saved.textContent = "Your changes are saved.";
      return;
    }
    answered = true;
    app.me.workbook_complete = Boolean(result.workbook_complete);
    const flash = [h("p", {}, h("strong", {}, "Saved."), " ", result.next_exercise_id ? "Here's your next exercise." : "")];
    if (result.unlocked_tool) {
      flash.push(h("p", {}, "You unlocked a new tool. ", h("a", { href: `/tools/${seg(result.unlocked_tool)}` }, "Open it"),
        " any time from Tools."));
    }
    if (result.module_completed) {
      flash.push(h("p", {}, h("strong", {}, `You finished module ${exercise.module_id}. `),
        blocks.filter((b) => b.content_type === "celebration").map((b) => inline(b.content_text.replace(/\s+/g, " ")))));
    }
    if (result.workbook_complete && result.module_completed) {
      flash.push(h("p", {}, "That was the last required exercise: you have completed the whole workbook."));
    }
    app.navigate(result.next_exercise_id ? `/workbook/${seg(result.next_exercise_id)}` : "/workbook", flash);
  });

  return h("article", { class: "exercise", "data-exercise": exercise.full_exercise_id },
    h("p", { class: "crumbs" }, h("a", { href: "/workbook" }, "Workbook"), ` · Module ${exercise.module_id} · Exercise ${exercise.exercise_id}`,
      exercise.is_required ? "" : " · optional", wasAnswered ? " · answered" : ""),
    h("h1", {}, exercise.title),
    before,
    form,
    after,
    exercise.sources && exercise.sources.length
      ? h("footer", { class: "sources" }, h("h2", {}, "Where these ideas come from"),
          h("ul", {}, exercise.sources.map((s) => h("li", {}, inline(s.label)))),
          h("p", {}, h("a", { href: "/credits" }, "All credits")))
      : null);
}
