// The source picker of a pane: a combobox (type to filter by name, path/URL, group, queue, kind)
// over a multi-select listbox of the sources the user may open, each with its kind, where it
// reads, its queue and whether a worker serves it. Enter or a click adds a source to the pane
// (or takes it out again). The WAI-ARIA combobox pattern: focus stays in the text box and
// aria-activedescendant names the active option.
import { kindByUrl } from "./kinds.js";
import { t } from "./i18n.js";

/** The sources of the pane template's <select>: [{src, name, kind, where, queue, groups, workers}]. */
export function sourceCatalog(select) {
  return [...select.options].filter((option) => option.value && !option.disabled).map((option) => {
    const kind = option.dataset.kind || option.value.split(":")[0];
    const url = option.value.split(":")[0];
    const workers = option.dataset.workers;
    return {
      src: option.value,
      name: option.dataset.name || option.textContent.trim(),
      kind: kindByUrl(url)?.label || kind,
      where: option.dataset.where || "",
      queue: option.dataset.queue || "",
      groups: (option.dataset.groups || "").split("\n").filter(Boolean),
      workers: workers === undefined || workers === "" ? null : Number(workers),
    };
  });
}

/** Whether a source matches the query: every word is found in its name, where, queue, groups or kind. */
export function matchesQuery(source, query) {
  const words = String(query ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = [source.name, source.where, source.queue, source.kind, ...source.groups]
    .join("\n").toLowerCase();
  return words.every((word) => hay.includes(word));
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

export class Picker {
  /**
   * `input` is the combobox, `panel` holds the listbox; `isChosen(src)` says whether the pane
   * follows a source, `choose(src)` adds it or takes it out.
   */
  constructor({ input, panel, catalog, idPrefix, isChosen, choose, signal }) {
    this.input = input;
    this.panel = panel;
    this.list = panel.querySelector(".picker-list");
    this.empty = panel.querySelector(".picker-empty");
    this.catalog = catalog;
    this.idPrefix = idPrefix;
    this.isChosen = isChosen;
    this.choose = choose;
    this.shown = [];
    this.active = -1;
    this.list.id = `${idPrefix}-list`;
    input.setAttribute("aria-controls", this.list.id);
    input.addEventListener("focus", () => this.open());
    input.addEventListener("click", () => this.open());
    input.addEventListener("input", () => { this.open(); this.render(0); });
    input.addEventListener("keydown", (event) => this.key(event));
    // Focus leaving by keyboard closes the list at once; by pointer only once the click is
    // done, so the layout does not move under the pointer between press and release.
    this.pointerDown = false;
    input.addEventListener("blur", (event) => {
      if (!this.pointerDown && !panel.contains(event.relatedTarget)) this.close();
    });
    document.addEventListener("pointerdown", () => { this.pointerDown = true; },
      { capture: true, signal });
    document.addEventListener("pointerup", () => {
      setTimeout(() => {
        this.pointerDown = false;
        if (document.activeElement !== input) this.close();
      }, 0);
    }, { signal });
    // Clicking an option keeps the focus in the text box (and the list open).
    this.list.addEventListener("pointerdown", (event) => event.preventDefault());
    this.list.addEventListener("click", (event) => {
      const item = event.target.closest("[role=option]");
      if (!item) return;
      this.pick(this.shown.findIndex((source) => source.src === item.dataset.src));
      input.focus();
    });
  }

  get isOpen() { return !this.panel.hidden; }

  /** Show the list (filtered by what the box holds). */
  open() {
    if (this.isOpen) return;
    this.panel.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.render(this.active >= 0 ? this.active : 0);
  }

  /** Hide the list. */
  close() {
    if (!this.isOpen) return;
    this.panel.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /** Rebuild the options that match the query; make option `active` the active one. */
  render(active = this.active) {
    this.shown = this.catalog.filter((source) => matchesQuery(source, this.input.value));
    const items = this.shown.map((source, i) => {
      const item = document.createElement("li");
      item.id = `${this.idPrefix}-${i}`;
      item.setAttribute("role", "option");
      item.dataset.src = source.src;
      item.setAttribute("aria-selected", String(this.isChosen(source.src)));
      const head = document.createElement("span");
      head.className = "pk-head";
      head.append(span("pk-check", ""), span("pk-name", source.name), span("pk-kind", source.kind));
      if (source.workers === 0) {
        head.appendChild(span("pk-worker", t("no_worker", { queue: source.queue })));
        item.dataset.noWorker = "";
      }
      item.appendChild(head);
      if (source.where) item.appendChild(span("pk-where", source.where));
      const meta = [t("picker_queue", { queue: source.queue })];
      if (source.groups.length) meta.push(t("picker_groups", { groups: source.groups.join(", ") }));
      item.appendChild(span("pk-meta", meta.join(" · ")));
      return item;
    });
    this.list.replaceChildren(...items);
    this.empty.hidden = items.length > 0;
    this.setActive(Math.min(Math.max(active, 0), items.length - 1));
  }

  /** Refresh which options are chosen (the pane's sources changed). */
  refresh() {
    for (const item of this.list.children) {
      item.setAttribute("aria-selected", String(this.isChosen(item.dataset.src)));
    }
  }

  setActive(index) {
    this.active = index;
    [...this.list.children].forEach((item, i) => item.classList.toggle("active", i === index));
    const item = this.list.children[index];
    if (item && this.isOpen) {
      this.input.setAttribute("aria-activedescendant", item.id);
      item.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  pick(index) {
    const source = this.shown[index];
    if (!source) return;
    this.setActive(index);
    this.choose(source.src);
    this.refresh();
  }

  key(event) {
    const last = this.shown.length - 1;
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        if (!this.isOpen) this.open();
        else this.setActive(this.active >= last ? 0 : this.active + 1);
        break;
      case "ArrowUp":
        event.preventDefault();
        if (!this.isOpen) this.open();
        else this.setActive(this.active <= 0 ? last : this.active - 1);
        break;
      case "PageDown":
        if (this.isOpen) { event.preventDefault(); this.setActive(Math.min(last, this.active + 8)); }
        break;
      case "PageUp":
        if (this.isOpen) { event.preventDefault(); this.setActive(Math.max(0, this.active - 8)); }
        break;
      case "Enter":
        // Enter chooses; it never submits the pane's form (that would start the stream).
        event.preventDefault();
        if (!this.isOpen) this.open();
        else this.pick(this.active);
        break;
      case "Escape":
        if (this.isOpen) {
          event.preventDefault();
          event.stopPropagation();
          this.close();
        } else if (this.input.value) {
          this.input.value = "";
          this.render(0);
        }
        break;
      case "Tab":
        this.close();
        break;
      default:
    }
  }
}
