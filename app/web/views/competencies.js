// Competency self-assessment: rate each competency 1–5, then see the summary (spec §3.3):
// averages per category as a bar chart, strengths and areas to grow, re-assessment after a year.

import { get, put } from "../api.js";
import { clear, h, newId, submitting, when } from "../dom.js";

const CATEGORIES = ["delivery", "interpersonal", "strategic"];
const CATEGORY_NAMES = { delivery: "Delivery", interpersonal: "Interpersonal", strategic: "Strategic", overall: "Overall" };

export async function competenciesView() {
  const [competencies, scores, summary] = await Promise.all([
    get("/api/competencies"), get("/api/competencies/scores"), get("/api/competencies/summary"),
  ]);
  const names = Object.fromEntries(competencies.map((c) => [c.id, c.name]));
  const current = Object.fromEntries(scores.map((s) => [s.competency_id, s.score]));
  const summaryBox = h("section", { class: "panel summary", "aria-labelledby": "summary-title" });
  showSummary(summaryBox, summary, names);

  const status = h("p", { class: "saved-note", role: "status" });
  const form = h("form", { class: "competency-form" },
    CATEGORIES.map((category) => categoryFields(category, competencies.filter((c) => c.category === category), current)),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Save my ratings"), status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const chosen = [...form.querySelectorAll("input[type=radio]:checked")]
      .map((input) => ({ competency_id: input.name, score: Number(input.value) }));
    if (chosen.length === 0) {
      status.textContent = "Pick a level for at least one competency first.";
      return;
    }
    const fresh = await submitting(form, async () => {
      await put("/api/competencies/scores", { scores: chosen });
      return get("/api/competencies/summary");
    });
    if (!fresh) return;
    showSummary(summaryBox, fresh, names);
    status.textContent = `Saved ${chosen.length} rating${chosen.length === 1 ? "" : "s"}.`;
  });

  return h("section", { class: "competencies" },
    h("h1", {}, "Your strengths"),
    h("p", {}, "Rate yourself on each competency, from 1 (just starting out) to 5 (you could teach it). There are no right answers: this is a snapshot for you, and you can change it whenever you like."),
    summaryBox,
    form);
}

function categoryFields(category, competencies, current) {
  const id = newId("category");
  return h("section", { class: "competency-category", "aria-labelledby": id },
    h("h2", { id }, CATEGORY_NAMES[category] || category),
    competencies.map((c) => competencyField(c, current[c.id])));
}

function competencyField(competency, score) {
  const legendId = newId("competency");
  const aboutId = `${legendId}-about`;
  const levels = [...competency.levels].sort((a, b) => a.level - b.level);
  return h("fieldset", { class: "competency", "aria-describedby": aboutId, "data-competency": competency.id },
    h("legend", { id: legendId }, competency.name),
    h("div", { class: "scale" }, [1, 2, 3, 4, 5].map((n) => {
      const inputId = `${legendId}-${n}`;
      return h("span", { class: "scale-option" },
        h("input", { type: "radio", id: inputId, name: competency.id, value: String(n), checked: score === n }),
        h("label", { for: inputId }, String(n)));
    })),
    // The definition and the levels are long: one disclosure keeps fifteen of them scannable.
    h("details", { class: "levels" }, h("summary", {}, "What it means, level by level"),
      h("p", { id: aboutId }, competency.definition),
      levels.length
        ? h("ol", {}, levels.map((l) => h("li", { value: String(l.level) }, l.description,
            l.job_context ? h("span", { class: "hint" }, ` (${l.job_context})`) : null)))
        : null));
}

function showSummary(box, summary, names) {
  clear(box).append(h("h2", { id: "summary-title" }, "Summary"));
  const averages = summary.averages || {};
  if (averages.overall === null || averages.overall === undefined) {
    box.append(h("p", {}, "Once you've rated a few competencies, your averages and strengths appear here."));
    return;
  }
  box.append(
    h("figure", { class: "chart" },
      h("figcaption", {}, "Average rating by area, out of 5"),
      h("ul", { class: "bars" }, [...CATEGORIES, "overall"].map((key) => bar(CATEGORY_NAMES[key], averages[key])))),
    h("div", { class: "summary-lists" },
      scoreList("Strengths", summary.strengths, names, "Nothing stands out above your average yet."),
      scoreList("Room to grow", summary.improvements, names, "Nothing stands out below your average.")));
  if (summary.reassessment_due) {
    box.append(h("p", { class: "notice" }, `Your oldest rating is from ${when(summary.oldest_assessment)}. A year on is a good moment to rate yourself again.`));
  }
}

function bar(label, value) {
  const known = typeof value === "number";
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = known ? `${(value / 5) * 100}%` : "0%";
  return h("li", { class: "bar" },
    h("span", { class: "bar-label" }, label),
    h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
    h("span", { class: "bar-value" }, known ? `${value.toFixed(1)} of 5` : "not rated"));
}

function scoreList(title, items, names, empty) {
  return h("div", {}, h("h3", {}, title),
    items && items.length
      ? h("ul", {}, items.map((i) => h("li", {}, `${names[i.competency_id] || i.competency_id}: ${i.score}`)))
      : h("p", { class: "hint" }, empty));
}
