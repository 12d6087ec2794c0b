// Your data: download everything as one file (export), and bring a file back in (import),
// with the server's report of what was added, updated or skipped.

import { RawJSON, request, post } from "../api.js";
import { field, h, newId, submitting, usernameField } from "../dom.js";

// A password a header carries unchanged: printable ASCII, no space at either end (HTTP trims those).
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

const KIND_NAMES = {
  exercise_responses: "Answers", responses: "Answers", exercises: "Answers", modules: "Finished modules",
  tool_instances: "Tool entries", competency_scores: "Strength ratings", settings: "Settings",
  custom_skills: "Your own skills", skills: "Skill tags",
};

export function humanKind(kind) {
  return KIND_NAMES[kind] || kind.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

/** An import (or merge) report as a readable table. */
export function reportView(report) {
  const counts = Object.entries(report.counts || {});
  const id = newId("report");
  return h("div", { class: "report", "aria-labelledby": id },
    h("h3", { id }, report.dry_run ? "What importing would do (nothing written yet)" : "What was imported"),
    counts.length
      ? h("div", { class: "table-scroll" }, h("table", {},
          h("thead", {}, h("tr", {}, ["", "Added", "Updated", "Unchanged", "Skipped"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, counts.map(([kind, c]) => h("tr", {},
            h("th", { scope: "row" }, humanKind(kind)),
            [c.inserted, c.updated, c.unchanged, c.skipped].map((n) => h("td", {}, String(n ?? 0))))))))
      : h("p", {}, "The file held nothing to import."),
    report.warnings && report.warnings.length
      ? [h("h4", {}, "Worth knowing"), h("ul", { class: "warnings" }, report.warnings.map((w) => h("li", {}, w)))]
      : null);
}

function fileName(response) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  return match ? match[1] : "dreamtree-export.json";
}

function download(response) {
  return response.blob().then((blob) => {
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: fileName(response), class: "visually-hidden" }, "download");
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  });
}

function exportSection(app) {
  const anonymous = app.me.is_anonymous;
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const status = h("span", { class: "saved-note", role: "status" });
  const encryptedButton = h("button", { type: "submit", value: "encrypted" }, "Download my workbook");
  const readableButton = h("button", { type: "submit", value: "readable", class: "secondary" }, "Download a readable copy");
  const form = h("form", { class: "export-form" },
    anonymous
      ? h("p", { class: "notice" }, "This workbook isn't saved to an account, so the file is not encrypted: anyone who opens it can read your answers. Keep it somewhere private.")
      : [h("ul", { class: "export-kinds" },
          h("li", {}, h("strong", {}, "Encrypted file"), " (the usual choice, to move your workbook to another account or another DreamTree): it opens only with your password."),
          h("li", {}, h("strong", {}, "Readable copy"), " (to keep or read yourself): ", h("em", {}, "not encrypted"), ". Anyone who opens it can read everything you wrote; its name ends in “unencrypted”.")),
        usernameField(app.me.email), field("Your password", password, "Asked again for either file.")],
    h("div", { class: "form-actions" }, encryptedButton, anonymous ? null : readableButton, status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const readable = !anonymous && event.submitter && event.submitter.value === "readable";
    const done = await submitting(form, async () => {
      const path = readable ? "/api/export?readable=true" : "/api/export";
      await download(await request("POST", path, anonymous ? {} : { password: password.value }));
      return true;
    });
    if (done) {
      password.value = "";
      status.textContent = readable ? "Your readable (unencrypted) copy is downloading." : "Your file is downloading.";
    }
  });
  const id = newId("section");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, "Download a copy"),
    h("p", {}, "Everything you've written (answers, tool entries, strength ratings and settings) in one file, in the open DreamTree format."),
    form);
}

function importSection(app) {
  const file = h("input", { type: "file", name: "file", accept: ".json,application/json", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password" });
  const result = h("div", { class: "import-result", "aria-live": "polite" });
  const checkButton = h("button", { type: "submit", class: "secondary", value: "check" }, "Check the file first");
  const importButton = h("button", { type: "submit", value: "import" }, "Import");
  const form = h("form", { class: "import-form" },
    field("Export file", file, "A .json file downloaded from DreamTree, as it is."),
    field("Password for the file", password, "Only for an encrypted file: the password of the account that downloaded it."),
    h("div", { class: "form-actions" }, checkButton, importButton));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const dryRun = event.submitter && event.submitter.value === "check";
    result.replaceChildren();
    const report = await submitting(form, async () => {
      const chosen = file.files[0];
      if (!chosen) throw new Error("Choose a file to import first.");
      const text = await chosen.text();
      try {
        JSON.parse(text);
      } catch {
        throw new Error("That file isn't a DreamTree export: it doesn't contain JSON.");
      }
      const path = `/api/import?dry_run=${dryRun ? "true" : "false"}`;
      // The file goes as it is, its password in X-Export-Password; a password a header would
      // change (spaces at an end, letters beyond ASCII) goes in the older wrapper instead.
      if (!password.value || HEADER_SAFE.test(password.value)) {
        return post(path, new RawJSON(text, password.value ? { "X-Export-Password": password.value } : {}));
      }
      return post(path, { document: JSON.parse(text), password: password.value });
    });
    if (!report) return;
    result.append(reportView(report));
    if (!report.dry_run) app.flash("Your file is imported.");
  });
  const id = newId("section");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, "Bring a copy back in"),
    h("p", {}, "Importing merges a file into this workbook. Nothing is duplicated: where both have the same thing, the newer version is kept. You can check what would change before anything is written."),
    form, result);
}

export async function dataView({ app }) {
  return h("section", { class: "data" },
    h("h1", {}, "Your data"),
    h("p", {}, "What you write here is yours. Take it with you, or bring it back."),
    exportSection(app),
    importSection(app));
}
