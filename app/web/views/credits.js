// Credits: every published source behind the workbook, by author surname, grouped by field.

import { get } from "../api.js";
import { h, inline, newId } from "../dom.js";

export async function creditsView() {
  const references = await get("/api/references");
  const groups = new Map();
  for (const reference of references) {
    const category = reference.category || "Other sources";
    if (!groups.has(category)) groups.set(category, []);
    groups.get(category).push(reference);
  }
  return h("section", { class: "credits" },
    h("h1", {}, "Credits and sources"),
    h("p", {}, "DreamTree stands on the work of many researchers, writers and practitioners. These are the sources its exercises draw on."),
    [...groups.entries()].map(([category, items]) => {
      const id = newId("credits");
      return h("section", { "aria-labelledby": id },
        h("h2", { id }, category),
        h("ul", { class: "citations" }, items.map((r) => h("li", { id: `ref-${r.id}` },
          h("p", {}, inline(r.full_citation)),
          r.metadata && r.metadata.influence ? h("p", { class: "hint" }, r.metadata.influence) : null))));
    }),
    h("section", { "aria-labelledby": "credits-software" },
      h("h2", { id: "credits-software" }, "Typeface"),
      h("p", {}, "The dyslexia-friendly font is OpenDyslexic by Abelardo Gonzalez, used under the Creative Commons Attribution 3.0 licence (based on Bitstream Vera).")));
}
