// Account: save this workbook (claim) with the honest warning and a recovery code shown once;
// sign in (asking what happens to this browser's unsaved answers), recover, devices, sign out.

import { del, get, post, seg } from "../api.js";
import { choose, clear, confirmChoice, field, h, newId, submitting, usernameField, when } from "../dom.js";
import { reportView } from "./data.js";

const MIN_PASSWORD = 15;

function input(attrs) {
  return h("input", { ...attrs, required: attrs.required !== false });
}

function passwordField(label, name, autocomplete, hint) {
  const control = input({ type: "password", name, autocomplete, minlength: autocomplete === "new-password" ? String(MIN_PASSWORD) : null });
  const wrapper = field(label, control, hint);
  const toggleId = newId("show");
  const toggle = h("input", { type: "checkbox", id: toggleId, onchange: () => (control.type = toggle.checked ? "text" : "password") });
  wrapper.append(h("span", { class: "show-password" }, toggle, h("label", { for: toggleId }, "Show")));
  return wrapper;
}

function section(title, ...content) {
  const id = newId("section");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), content);
}

function valueOf(form, name) {
  return form.elements.namedItem(name).value;
}

export async function accountView({ app }) {
  return app.me.is_anonymous ? anonymousPage(app) : signedInPage(app);
}

// --- an anonymous workbook ----------------------------------------------------------------

function anonymousPage(app) {
  return h("section", { class: "account" },
    h("h1", {}, "Save your workbook"),
    h("p", {}, "Right now your workbook lives only in this browser. Save it with an email and a password to open it on your other devices, and so that clearing this browser doesn't wipe it."),
    claimSection(app),
    signInSection(app),
    recoverSection(app),
    startOverSection(app));
}

function claimSection(app) {
  const understood = h("input", { type: "checkbox", id: newId("understood"), name: "understood", required: true });
  const form = h("form", { class: "claim-form" },
    h("div", { class: "notice", id: "claim-warning" },
      h("p", {}, h("strong", {}, "Please read this first. "),
        "Your answers are encrypted with a key that only your password, or your recovery code, can open. We never see them, so we can't reset them for you."),
      h("p", {}, "If you lose both your password and your recovery code, your answers are gone for good. Nobody, including us, can bring them back.")),
    field("Email", input({ type: "email", name: "email", autocomplete: "email", maxlength: "320" })),
    passwordField("Password", "password", "new-password",
      `At least ${MIN_PASSWORD} characters. A few unrelated words make a strong, memorable password.`),
    h("div", { class: "field field-check" }, understood,
      h("label", { for: understood.id }, "I understand that losing both my password and my recovery code means losing my answers.")),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Save my workbook")));
  const box = section("Save it with an email and password", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await submitting(form, () =>
      post("/api/account/claim", { email: valueOf(form, "email").trim(), password: valueOf(form, "password") }));
    if (!result) return;
    app.setMe(result.user);
    showRecoveryCode(box, result.recovery_code, "Your workbook is saved", app);
  });
  return box;
}

/** The recovery code replaces the whole page (the reader is signed in now): shown this once,
 * with a way to copy it and a deliberate "done". */
function showRecoveryCode(from, code, title, app) {
  const page = from.closest("section.account");
  clear(page).append(h("h1", { tabindex: "-1" }, title), recoveryCode(code, app));
  document.title = `${title} · DreamTree`;
  page.querySelector("h1").focus();
}

function recoveryCode(code, app) {
  const copied = h("span", { class: "saved-note", role: "status" });
  return h("div", { class: "recovery panel" },
    h("p", {}, "Here is your recovery code. It is the only way back into your answers if you ever forget your password."),
    h("p", { class: "recovery-code" }, h("code", { id: "recovery-code" }, code)),
    h("p", {}, h("strong", {}, "Write it down or keep it in a password manager now. "), "We show it only this once and can't show it again."),
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          await navigator.clipboard.writeText(code);
          copied.textContent = "Copied.";
        } catch {
          copied.textContent = "Copying didn't work here: select the code and copy it by hand.";
        }
      } }, "Copy the code"),
      h("button", { type: "button", onclick: () => app.navigate("/account", "Your workbook is saved to your account.") }, "I've saved it"),
      copied));
}

function signInSection(app) {
  const form = h("form", { class: "login-form" },
    field("Email", input({ type: "email", name: "email", autocomplete: "username", maxlength: "320" })),
    passwordField("Password", "password", "current-password"),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { email: valueOf(form, "email").trim(), password: valueOf(form, "password") };
    const result = await submitting(form, async () => {
      try {
        return await post("/api/auth/login", body);
      } catch (error) {
        if (error.code !== "anonymous_data_present") throw error;
        const choice = await choose("What about the answers in this browser?",
          ["This browser holds answers that aren't saved to any account yet.",
            "Bring them into the account you're signing in to, or leave them behind? Where both have an answer to the same exercise, the newer one is kept."],
          [["cancel", "Cancel", "secondary"], ["discard", "Leave them behind", "secondary"], ["merge", "Bring them along", "primary"]]);
        if (choice === null) return null;
        return post("/api/auth/login", { ...body, merge_anonymous: choice === "merge" });
      }
    });
    if (!result) return;
    app.setMe(result.user);
    const flash = [h("p", {}, h("strong", {}, "Welcome back. "), "You're signed in.")];
    if (result.merge) flash.push(h("p", {}, "The answers from this browser were brought into your account."), reportView(result.merge));
    app.navigate("/", flash);
  });
  return section("Already saved a workbook? Sign in", form);
}

function recoverSection(app) {
  const form = h("form", { class: "recover-form" },
    field("Email", input({ type: "email", name: "email", autocomplete: "username", maxlength: "320" })),
    field("Recovery code", input({ type: "text", name: "recovery_code", autocomplete: "off", spellcheck: "false", maxlength: "200" })),
    passwordField("New password", "new_password", "new-password", `At least ${MIN_PASSWORD} characters.`),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Set a new password")));
  const details = h("details", { class: "panel" }, h("summary", {}, "Forgot your password? Use your recovery code"), form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await submitting(form, () => post("/api/account/recover", {
      email: valueOf(form, "email").trim(), recovery_code: valueOf(form, "recovery_code").trim(),
      new_password: valueOf(form, "new_password"),
    }));
    if (!result) return;
    app.setMe(result.user);
    showRecoveryCode(details, result.recovery_code, "Your new password is set", app);
  });
  return details;
}

function startOverSection(app) {
  const form = h("form", {}, h("p", {}, "Signing out of a workbook you haven't saved deletes it from this browser, with every answer in it."),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "danger" }, "Delete this workbook and start over")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sure = await confirmChoice("Delete this workbook?",
      ["It isn't saved to an account, so this deletes every answer and tool entry in it for good.",
        "To keep it, save it with an email and password first."], "Delete and start over");
    if (!sure) return;
    const done = await submitting(form, async () => {
      await del("/api/session");
      return true;
    });
    if (done) await app.restart("Your old workbook is deleted. This is a fresh one.");
  });
  return section("Start over", form);
}

// --- a saved account ----------------------------------------------------------------------

async function signedInPage(app) {
  const devices = h("ul", { class: "devices" });
  const devicesStatus = h("p", { class: "saved-note", role: "status" });
  const loadDevices = async () => {
    const sessions = await get("/api/account/sessions");
    clear(devices).append(...sessions.map((s) => h("li", { class: "device" },
      h("span", {}, s.current ? h("strong", {}, "This device") : "Another device",
        h("span", { class: "hint" }, ` · signed in ${when(s.created_at)}, last seen ${when(s.last_seen_at)}`)),
      s.current ? null : h("button", { type: "button", class: "secondary small", onclick: async () => {
        try {
          await del(`/api/account/sessions/${seg(s.id)}`);
          devicesStatus.textContent = "That device is signed out.";
          await loadDevices();
        } catch (error) {
          devicesStatus.textContent = error.detail;
        }
      } }, "Sign it out"))));
  };
  await loadDevices();

  const signOut = h("form", {}, h("div", { class: "form-actions" }, h("button", { type: "submit", class: "secondary" }, "Sign out of this device")));
  signOut.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = await submitting(signOut, async () => {
      await del("/api/session");
      return true;
    });
    if (done) await app.restart("You're signed out. Sign in any time to pick up where you left off.");
  });

  return h("section", { class: "account" },
    h("h1", {}, "Your account"),
    h("p", {}, "Signed in as ", h("strong", { id: "account-email" }, app.me.email), "."),
    signOut,
    section("Your devices", h("p", {}, "Everywhere you're signed in right now."), devices, devicesStatus),
    passwordSection(app.me.email),
    deleteSection(app));
}

function passwordSection(email) {
  const status = h("span", { class: "saved-note", role: "status" });
  const form = h("form", {},
    usernameField(email),
    passwordField("Current password", "current_password", "current-password"),
    passwordField("New password", "new_password", "new-password", `At least ${MIN_PASSWORD} characters.`),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Change password"), status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const done = await submitting(form, async () => {
      await post("/api/account/password", {
        current_password: valueOf(form, "current_password"), new_password: valueOf(form, "new_password"),
      });
      return true;
    });
    if (done) {
      form.reset();
      status.textContent = "Your password is changed. Your recovery code still works.";
    }
  });
  return h("details", { class: "panel" }, h("summary", {}, "Change your password"), form);
}

function deleteSection(app) {
  const form = h("form", {},
    h("p", {}, "This deletes your account and everything in it: answers, tool entries, ratings and settings. It can't be undone. You may want to download a copy from ", h("a", { href: "/data" }, "Your data"), " first."),
    usernameField(app.me.email),
    passwordField("Your password", "password", "current-password"),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "danger" }, "Delete my account")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sure = await confirmChoice("Delete your account?", "Everything in it is deleted for good.", "Delete my account");
    if (!sure) return;
    const done = await submitting(form, async () => {
      await del("/api/account", { password: valueOf(form, "password") });
      return true;
    });
    if (done) await app.restart("Your account and everything in it are deleted.");
  });
  return h("details", { class: "panel" }, h("summary", {}, "Delete your account"), form);
}
