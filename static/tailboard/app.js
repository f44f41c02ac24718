// The dashboard: panes side by side, the page URL that records them, keyboard shortcuts.
import { TitleBadge } from "./alerts.js";
import { kindOfSource, optionNames } from "./kinds.js";
import { DEFAULT_CAP } from "./logview.js";
import { MAX_SOURCES } from "./member.js";
import { Pane, defaultSpec } from "./pane.js";

const MIN_CAP = 100;
const MAX_CAP = 200000;
const PANE_KEYS = ["filter", "hl"];

/** The option names of the kind of source value `src` ("tailf:3"), from the pane template. */
function kindOptionNames(src) {
  const template = document.getElementById("pane-template");
  const kind = kindOfSource(src);
  return template && kind ? optionNames(template.content, kind.url) : [];
}

/** The option names of every kind among a pane's sources, without repeats. */
function optionNamesOf(srcs) {
  return [...new Set(srcs.flatMap((src) => kindOptionNames(src)))];
}

/**
 * Encode pane specs as the page hash: one `p` parameter per pane, defaults left out. A merged
 * pane has one `src` per source (in order) and a `hide` per hidden source.
 */
export function encodePanes(specs) {
  const top = new URLSearchParams();
  const defaults = defaultSpec();
  for (const spec of specs) {
    const params = new URLSearchParams();
    const srcs = [spec.src, ...(spec.more || [])].filter(Boolean);
    if (!srcs.length) params.set("src", "");
    for (const src of srcs) params.append("src", src);
    for (const src of spec.hide || []) params.append("hide", src);
    for (const key of [...optionNamesOf(srcs), ...PANE_KEYS, "cap"]) {
      if (spec[key] === undefined || spec[key] === null) continue;
      if (String(spec[key]) !== String(defaults[key])) params.set(key, spec[key]);
    }
    if (!spec.wrap) params.set("wrap", "0");
    if (spec.run) params.set("run", "1");
    if (spec.time && spec.time !== "sent") params.set("time", spec.time);
    if (spec.alert) params.set("alert", "1");
    top.append("p", params.toString());
  }
  return top.toString();
}

/** Decode the page hash into pane specs. */
export function decodePanes(hash) {
  const top = new URLSearchParams(hash.replace(/^#/, ""));
  return top.getAll("p").map((value) => {
    const params = new URLSearchParams(value);
    const spec = defaultSpec();
    const srcs = [...new Set(params.getAll("src").filter((src) => kindOfSource(src) !== null))]
      .slice(0, MAX_SOURCES);
    spec.src = srcs[0] || (params.getAll("src").some((src) => src === "") ? "" : null);
    spec.more = srcs.slice(1);
    spec.hide = params.getAll("hide").filter((src) => srcs.includes(src));
    for (const key of [...optionNamesOf(srcs), ...PANE_KEYS]) {
      if (params.has(key)) spec[key] = params.get(key);
    }
    const cap = Number(params.get("cap"));
    spec.cap = Number.isInteger(cap) && cap >= MIN_CAP && cap <= MAX_CAP ? cap : DEFAULT_CAP;
    spec.wrap = params.get("wrap") !== "0";
    spec.run = params.get("run") === "1" && srcs.length > 0;
    spec.time = params.get("time") || "sent";
    spec.alert = params.get("alert") === "1";
    return spec;
  }).filter((spec) => spec.src !== null);
}

class Board {
  constructor(container, addButton) {
    this.container = container;
    this.addButton = addButton;
    this.panes = [];
    this.active = null;
    this.count = 0;
    this.written = null;
    this.pendingWrite = false;
    this.titleBadge = new TitleBadge();
    this.template = document.getElementById("pane-template");
    this.sources = this.template
      ? [...this.template.content.querySelectorAll(".source option")].map((o) => o.value)
        .filter(Boolean) : [];
  }

  /**
   * Open a pane for a spec; start it when the spec says it was running. A spec from a link
   * (`fromLink`: the page URL) starts a plain tail only: a search or notifications need a click.
   */
  open(spec, { fromLink = false } = {}) {
    this.count += 1;
    const pane = new Pane(this, spec, this.count);
    this.panes.push(pane);
    this.container.appendChild(pane.el);
    this.layout();
    if (!this.active) this.activate(pane);
    if (fromLink) pane.openFromLink(spec);
    else if (spec.run) pane.start();
    this.changed();
    return pane;
  }

  /** The page URL that opens one pane with `spec` (a link to a view, e.g. around a line). */
  hrefFor(spec) {
    return `${window.location.pathname}${window.location.search}#${encodePanes([spec])}`;
  }

  /** Open an empty pane with its source picker focused, as the first pane of a fresh page. */
  add() {
    const pane = this.open(defaultSpec());
    pane.picker.input.focus();
    pane.el.scrollIntoView({ block: "nearest" });
  }

  close(pane) {
    pane.dispose();
    pane.el.remove();
    this.panes = this.panes.filter((other) => other !== pane);
    if (this.active === pane) this.activate(this.panes[0] || null);
    this.layout();
    this.changed();
    (this.panes[0]?.output || this.addButton)?.focus();
  }

  activate(pane) {
    if (this.active === pane) return;
    this.active?.el.classList.remove("active");
    this.active = pane;
    pane?.el.classList.add("active");
  }

  layout() {
    this.container.dataset.count = String(this.panes.length);
  }

  /** Record the panes in the page URL (soon, once per burst of changes). */
  changed() {
    if (this.pendingWrite) return;
    this.pendingWrite = true;
    queueMicrotask(() => {
      this.pendingWrite = false;
      const hash = encodePanes(this.panes.map((pane) => pane.spec()));
      this.written = hash;
      if (window.location.hash.replace(/^#/, "") !== hash) {
        history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${hash}`);
      }
    });
  }

  /** Open the panes a URL names (or one empty pane with its source picker open). */
  restore() {
    for (const pane of [...this.panes]) {
      pane.dispose();
      pane.el.remove();
    }
    this.panes = [];
    this.active = null;
    const specs = decodePanes(window.location.hash);
    if (specs.length) for (const spec of specs) this.open(spec, { fromLink: true });
    else if (this.sources.length) this.open(defaultSpec());
    // A pane without a source starts with its picker open (a fresh page chooses nothing).
    this.panes.find((pane) => !pane.members.length)?.picker.input.focus();
    this.layout();
  }

  tick() {
    for (const pane of this.panes) pane.tick();
  }
}

function typingIn(target) {
  return Boolean(target.closest && target.closest("input, textarea, select, [contenteditable=true]"));
}

function shortcuts(board) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (typingIn(target)) return;
    const pane = board.active || board.panes[0];
    if (!pane) return;
    if (event.key === "/") {
      event.preventDefault();
      pane.filterInput.focus();
      pane.filterInput.select();
    } else if (event.key === " " && !target.closest("button, a, summary")) {
      event.preventDefault();
      pane.toggleFollow();
    } else if (event.key === "n" || event.key === "N" || event.key === "p") {
      event.preventDefault();
      pane.search.jump(event.key === "n" ? 1 : -1);
    } else if (event.key === "End") {
      event.preventDefault();
      pane.view.resume();
      pane.view.schedule();
    }
  });
}

const container = document.getElementById("panes");
if (container) {
  const addButton = document.getElementById("add-pane");
  const board = new Board(container, addButton);
  addButton?.addEventListener("click", () => board.add());
  if (addButton && !board.sources.length) addButton.disabled = true;
  shortcuts(board);
  board.restore();
  window.addEventListener("hashchange", () => {
    if (window.location.hash.replace(/^#/, "") !== board.written) board.restore();
  });
  window.addEventListener("pagehide", () => { for (const pane of board.panes) pane.dispose(); });
  setInterval(() => board.tick(), 1000);
  window.tailboard = board;
  container.dataset.ready = "true";
}
