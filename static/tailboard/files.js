// Files of a multi-file stream: a short name and a stable colour per file, and the pane's
// per-file toggles that hide one file's lines. DOM built with textContent only.
import { t } from "./i18n.js";

/** Number of file colours in style.css (.ft-0 … .ft-7). */
export const FILE_COLOURS = 8;

/** The short name of a file path: its basename ("" for none). */
export function shortName(path) {
  const text = String(path ?? "");
  const trimmed = text.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1) || text;
}

/** A stable colour index (0 … FILE_COLOURS-1) for a file: the same name, the same colour. */
export function fileColour(path) {
  let hash = 2166136261;
  for (const char of shortName(path)) {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return hash % FILE_COLOURS;
}

/** A tag naming a file: <span class="file-tag ft-N" title="path">name</span>. */
export function fileTag(path) {
  const tag = document.createElement("span");
  tag.className = `file-tag ft-${fileColour(path)}`;
  tag.title = String(path);
  tag.textContent = shortName(path);
  return tag;
}

/** The per-file toggle list of a pane: one pressed button per file seen; unpressed = hidden. */
export class FileToggles {
  constructor(container, onChange) {
    this.container = container;
    this.list = container.querySelector(".file-list");
    this.onChange = onChange;
    this.buttons = new Map();
    this.hidden = new Set();
  }

  /** Make sure a file has its toggle (a no-op for files already listed). */
  add(path) {
    if (!path || this.buttons.has(path)) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = `file-toggle toggle ft-${fileColour(path)}`;
    button.setAttribute("aria-pressed", "true");
    button.title = t("file_toggle", { path });
    button.textContent = shortName(path);
    button.dataset.file = path;
    button.addEventListener("click", () => this.toggle(path));
    this.buttons.set(path, button);
    this.list.appendChild(button);
    this.container.hidden = false;
  }

  /** Show or hide one file's lines. */
  toggle(path) {
    const button = this.buttons.get(path);
    if (!button) return;
    const shown = this.hidden.has(path);
    if (shown) this.hidden.delete(path);
    else this.hidden.add(path);
    button.setAttribute("aria-pressed", String(shown));
    this.onChange(new Set(this.hidden));
  }

  /** Forget every file (a new stream). */
  reset() {
    const had = this.hidden.size > 0;
    this.buttons.clear();
    this.hidden.clear();
    this.list.replaceChildren();
    this.container.hidden = true;
    if (had) this.onChange(new Set());
  }
}
