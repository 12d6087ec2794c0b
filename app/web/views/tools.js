// Tools: the ten tools with what is unlocked, and for each one its entries (create, edit, delete)
// through forms drawn from the tool's content schema.

import { del, get, post, put, seg } from "../api.js";
import { clear, confirmChoice, h, icon, newId, submitting, when } from "../dom.js";
import { contentView, describeTool, entryName, keptView, nameField, schemaFields } from "./schema-form.js";

export async function toolsView() {
  const tools = await get("/api/tools");
  const unlocked = tools.filter((t) => t.unlocked);
  const locked = tools.filter((t) => !t.unlocked);
  return h("section", { class: "tools" },
    h("h1", {}, "Your tools"),
    h("p", {}, unlocked.length
      ? "Tools you can use any time, alongside the workbook."
      : "Tools unlock as you work through the workbook. The first one opens after your very first exercise."),
    unlocked.length ? h("ul", { class: "tool-grid" }, unlocked.map(toolCard)) : null,
    locked.length ? [h("h2", {}, "Still to unlock"), h("ul", { class: "tool-grid" }, locked.map(toolCard))] : null);
}

function toolCard(tool) {
  const count = tool.instance_count === 1 ? "1 entry" : `${tool.instance_count} entries`;
  return h("li", { class: tool.unlocked ? "tool-card" : "tool-card locked", "data-tool": tool.id },
    h("span", { class: "tool-icon" }, icon(tool.unlocked ? tool.icon_name : "lock")),
    h("div", {},
      h("h3", {}, tool.unlocked ? h("a", { href: `/tools/${seg(tool.id)}` }, tool.plural_name) : tool.plural_name),
      h("p", { class: "hint" }, describeTool(tool.content_schema)),
      h("p", { class: "tool-meta" }, tool.unlocked ? count : "Locked: unlocks in the workbook",
        tool.unlocked && tool.has_reminder && tool.reminder_frequency ? ` · ${tool.reminder_frequency} reminder` : "")));
}

export async function toolView({ params }) {
  const [toolId] = params;
  const [tools, instances] = await Promise.all([
    get("/api/tools"),
    get(`/api/tools/${seg(toolId)}/instances`).catch((error) => (error.status === 404 ? null : Promise.reject(error))),
  ]);
  const tool = tools.find((t) => t.id === toolId);
  if (!tool || instances === null) {
    return h("section", {}, h("h1", {}, "No such tool"), h("p", {}, h("a", { href: "/tools" }, "See all tools")));
  }
  return new ToolPage(tool, instances).node;
}

class ToolPage {
  constructor(tool, instances) {
    this.tool = tool;
    this.schema = tool.content_schema;
    this.nameKey = nameField(this.schema);
    this.instances = instances;
    this.list = h("ul", { class: "entries", "aria-label": tool.plural_name });
    this.newArea = h("div", { class: "new-entry" });
    this.status = h("p", { class: "saved-note", role: "status" });
    const intro = describeTool(this.schema);
    this.node = h("section", { class: "tool-page", "data-tool": tool.id },
      h("p", { class: "crumbs" }, h("a", { href: "/tools" }, "Tools")),
      h("h1", {}, h("span", { class: "inline-icon" }, icon(tool.icon_name)), tool.plural_name),
      intro ? h("p", {}, intro) : null,
      tool.unlocked ? null : h("p", { class: "notice" }, icon("lock"),
        " This tool is still locked. It opens as you work through the workbook; anything already here stays readable."),
      this.newArea,
      this.status,
      h("h2", {}, `Your ${tool.plural_name.toLowerCase()}`),
      this.list);
    this.showNewButton();
    this.renderList();
  }

  showNewButton() {
    clear(this.newArea);
    if (!this.tool.unlocked) return;
    this.newArea.append(h("button", { type: "button", onclick: () => this.openNew() }, `New ${this.tool.singular_name.toLowerCase()}`));
  }

  openNew() {
    clear(this.newArea).append(this.form(null, async (content) => {
      const created = await post(`/api/tools/${seg(this.tool.id)}/instances`, { content });
      this.instances.unshift(created);
      this.showNewButton();
      this.renderList();
      this.status.textContent = `Saved your ${this.tool.singular_name.toLowerCase()}.`;
    }, () => this.showNewButton()));
    this.newArea.querySelector("input, textarea, select")?.focus();
  }

  /** A form for new or existing content; `save` throws on failure, leaving the form as typed. */
  form(instance, save, cancel) {
    const fields = schemaFields(this.schema, instance ? instance.content : null);
    const titleId = newId("form");
    const form = h("form", { class: "panel tool-form", "aria-labelledby": titleId },
      h("h2", { id: titleId }, instance ? `Edit ${this.tool.singular_name.toLowerCase()}` : `New ${this.tool.singular_name.toLowerCase()}`),
      h("p", { class: "hint" }, "Fields marked * are needed; everything else is up to you."),
      fields.node,
      instance ? keptView(this.schema, instance.content) : null,
      h("div", { class: "form-actions" },
        h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.status.textContent = "";
      await submitting(form, () => save(fields.read()));
    });
    return form;
  }

  renderList() {
    clear(this.list);
    if (this.instances.length === 0) {
      this.list.append(h("li", { class: "hint" }, this.tool.unlocked ? "Nothing here yet. Start your first one above." : "Nothing here yet."));
      return;
    }
    for (const instance of this.instances) this.list.append(this.entry(instance));
  }

  entry(instance) {
    const name = entryName(this.schema, instance.content) || this.tool.singular_name;
    const item = h("li", { class: "entry panel", "data-instance": instance.id });
    const show = () => {
      clear(item).append(
        h("h3", {}, name),
        h("p", { class: "hint" }, `Updated ${when(instance.updated_at)}`),
        contentView(this.schema, Object.fromEntries(Object.entries(instance.content || {}).filter(([k]) => k !== this.nameKey))),
        keptView(this.schema, instance.content),
        h("div", { class: "form-actions" },
          h("button", { type: "button", class: "secondary", "aria-label": `Edit ${name}`, onclick: edit }, "Edit"),
          h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}`, onclick: remove }, "Delete")));
    };
    const edit = () => {
      clear(item).append(this.form(instance, async (content) => {
        const saved = await put(`/api/tool-instances/${seg(instance.id)}`, { content });
        this.instances = this.instances.filter((i) => i.id !== instance.id);
        this.instances.unshift(saved);
        this.renderList();
        this.status.textContent = "Your changes are saved.";
      }, show));
      item.querySelector("input, textarea, select")?.focus();
    };
    const remove = async () => {
      const sure = await confirmChoice(`Delete “${name}”?`, "This can't be undone.", "Delete");
      if (!sure) return;
      try {
        await del(`/api/tool-instances/${seg(instance.id)}`);
      } catch (error) {
        this.status.textContent = error.detail;
        return;
      }
      this.instances = this.instances.filter((i) => i.id !== instance.id);
      this.renderList();
      this.status.textContent = `Deleted “${name}”.`;
    };
    show();
    return item;
  }
}
