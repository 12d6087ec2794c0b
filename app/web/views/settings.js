// Settings: background, text colour and font apply at once (and are saved at once); the
// personality type is saved the same way. The palette lives here only: the page sets CSS
// custom properties through the CSSOM, which the CSP allows (no inline styles needed).

import { get, patch } from "../api.js";
import { clear, field, h, newId } from "../dom.js";

export const BACKGROUNDS = {
  cream: ["Cream", "#fbf6ec"],
  sage: ["Sage", "#e3ecdf"],
  sky: ["Sky", "#e2eef8"],
  blush: ["Blush", "#f9e6e8"],
  night: ["Night", "#1b2130"],
};
export const TEXT_COLORS = {
  charcoal: ["Charcoal", "#2b2b2b"],
  ink: ["Ink", "#1e2a4a"],
  espresso: ["Espresso", "#3d2b1f"],
  forest: ["Forest", "#1f3d2b"],
  ivory: ["Ivory", "#f5efe2"],
};
export const FONTS = {
  system: ["System", 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif'],
  serif: ["Serif", 'Charter, "Bitstream Charter", "Iowan Old Style", Georgia, "Noto Serif", "DejaVu Serif", serif'],
  sans: ["Sans", '"Helvetica Neue", Arial, "Liberation Sans", "Noto Sans", "DejaVu Sans", sans-serif'],
  mono: ["Mono", 'ui-monospace, "SF Mono", Menlo, "DejaVu Sans Mono", "Liberation Mono", monospace'],
  dyslexic: ["OpenDyslexic", '"OpenDyslexic", "Comic Sans MS", sans-serif'],
};

function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG contrast ratio of two #rrggbb colours. */
export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/** Puts the reader's look on the page. */
export function applySettings(settings) {
  if (!settings) return;
  const root = document.documentElement;
  const bg = BACKGROUNDS[settings.background_color] || BACKGROUNDS.cream;
  const text = TEXT_COLORS[settings.text_color] || TEXT_COLORS.charcoal;
  const font = FONTS[settings.font] || FONTS.system;
  root.style.setProperty("--bg", bg[1]);
  root.style.setProperty("--text", text[1]);
  root.style.setProperty("--font", font[1]);
  root.dataset.background = settings.background_color;
  root.dataset.text = settings.text_color;
  root.dataset.font = settings.font;
  const dark = luminance(bg[1]) < 0.2;
  root.style.colorScheme = dark ? "dark" : "light";
  // Error red, chosen per background so it keeps at least 5:1 on the page and its panels.
  root.style.setProperty("--danger", dark ? "#ff9b8f" : "#a3221b");
}

function radios(name, legend, options, selected, sample) {
  const legendId = newId("legend");
  return h("fieldset", { class: "choice-group", "aria-labelledby": legendId },
    h("legend", { id: legendId }, legend),
    h("div", { class: "choices" }, Object.entries(options).map(([value, [label, css]]) => {
      const id = newId(name);
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" }, sample ? "Aa" : "");
      if (sample) swatch.style.fontFamily = css;
      else swatch.style.background = css;
      return h("span", { class: "choice" },
        h("input", { type: "radio", id, name, value, checked: value === selected }),
        h("label", { for: id }, swatch, label));
    })),
    h("p", { class: "saved-note", role: "status" }));
}

export async function settingsView({ app }) {
  const [settings, types] = await Promise.all([get("/api/settings"), get("/api/personality-types")]);
  const current = { ...settings };
  const warning = h("p", { class: "notice", hidden: true });
  const personality = h("select", { name: "personality_type" },
    h("option", { value: "", selected: !settings.personality_type }, "Not set"),
    types.map((t) => h("option", { value: t.code, selected: t.code === settings.personality_type }, `${t.code}: ${t.name}`)));
  const typeSummary = h("p", { class: "hint" });
  const describeType = () => {
    const found = types.find((t) => t.code === personality.value);
    typeSummary.textContent = found ? found.summary : "";
  };
  describeType();

  const form = h("form", { class: "settings-form" },
    radios("background_color", "Background", BACKGROUNDS, settings.background_color, false),
    radios("text_color", "Text colour", TEXT_COLORS, settings.text_color, false),
    warning,
    radios("font", "Font", FONTS, settings.font, true),
    h("fieldset", { class: "choice-group" }, h("legend", {}, "Personality type"),
      field("Your type", personality, "Optional. If you know your personality type, keep it with your workbook."),
      typeSummary, h("p", { class: "saved-note", role: "status" })));

  const checkContrast = () => {
    const ratio = contrast(BACKGROUNDS[current.background_color][1], TEXT_COLORS[current.text_color][1]);
    warning.hidden = ratio >= 4.5;
    clear(warning).append(`This pair is hard to read (contrast ${ratio.toFixed(1)} to 1). `,
      current.background_color === "night" ? "Ivory text reads best on Night." : "A darker text colour reads better on this background.");
  };
  checkContrast();

  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", async (event) => {
    const input = event.target;
    if (!input.name) return;
    const value = input.name === "personality_type" ? input.value || null : input.value;
    current[input.name] = value;
    if (input.name === "personality_type") describeType();
    else {
      applySettings(current);
      checkContrast();
    }
    // The answer shows in the group that changed, where the reader is looking.
    for (const note of form.querySelectorAll(".choice-group > .saved-note")) note.textContent = "";
    const status = input.closest("fieldset.choice-group").querySelector(":scope > .saved-note");
    status.classList.remove("form-error");
    status.textContent = "Saving…";
    try {
      const saved = await patch("/api/settings", { [input.name]: value });
      app.me.settings = saved;
      status.textContent = "Saved.";
    } catch (error) {
      status.classList.add("form-error");
      status.textContent = error.detail;
    }
  });

  return h("section", { class: "settings" },
    h("h1", {}, "Settings"),
    h("p", {}, "Make the workbook comfortable to read. Changes apply straight away and follow you to any device where you sign in."),
    form);
}
