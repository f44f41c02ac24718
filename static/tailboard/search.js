// A log pane's history search and view around a line: the progress bar (bytes/s, matches),
// jumping between matches, downloading the results, and links that open the view around a
// match in a new pane. The options themselves are the kind's fields (search, context, rotated,
// follow, around, file); the server does the scanning (tailf/history.py).
import { shortName } from "./files.js";
import { formatBytes, formatCount, t } from "./i18n.js";
import { resultsText } from "./matchrows.js";

/** How many lines the view around a match shows (half before, half after). */
export const AROUND_LINES = 40;

/** Offer a Blob as a file download. */
export function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Search and around-view controls of one pane; `aroundSpec(file, lineNo)` builds a pane spec. */
/**
 * Matches of one file (in file order) with overlapping context merged, as grep -C shows them:
 * a context line already shown (as context or as a match) is not shown again, and a match's
 * lines after stop before the next match, which is never shown as context. `shownTo` keeps,
 * per file, the last line number shown, across frames (a match that an earlier frame showed as
 * context is cut out of that context first: `SearchPanel.matches`).
 */
export function mergeContext(file, items, shownTo) {
  const sorted = items.map((item) => ({ line_no: Number(item.line_no) || 0,
    line: String(item.line ?? ""), before: (item.before || []).map(String),
    after: (item.after || []).map(String) })).sort((a, b) => a.line_no - b.line_no);
  return sorted.map((item, i) => {
    const last = shownTo.get(file) ?? 0;
    const first = item.line_no - item.before.length;
    const before = item.before.slice(Math.max(0, last + 1 - first));
    const next = sorted[i + 1];
    const after = next ? item.after.slice(0, Math.max(0, next.line_no - item.line_no - 1))
      : item.after;
    shownTo.set(file, Math.max(last, item.line_no + after.length));
    return { ...item, before, after };
  });
}

export class SearchPanel {
  constructor(pane, { aroundSpec, hrefFor }) {
    this.pane = pane;
    this.aroundSpec = aroundSpec;
    this.hrefFor = hrefFor;
    const $ = (selector) => pane.el.querySelector(selector);
    this.bar = $(".search-bar");
    this.progressBar = $(".search-progress");
    this.summary = $(".search-summary");
    this.position = $(".search-position");
    this.mode = null;
    this.results = [];
    this.seen = new Set();
    this.shownTo = new Map(); // file -> the last line number shown (as a match or context)
    this.current = null;
    this.startedAt = 0;
    this.announcedAround = false;
    this.wire();
    this.syncChip();
  }

  /**
   * The pane's input named `name`: that of the kind shown (several kinds, logs and containers,
   * have the same search fields), else the first.
   */
  field(name) {
    return this.part(`input[name=${name}]`);
  }

  /** The first element matching `selector` in the shown kind's options, else in the pane. */
  part(selector) {
    const root = this.pane.el;
    const kind = root.querySelector(`.kind-options[data-kind="${CSS.escape(this.pane.kind || "")}"]`);
    return kind?.querySelector(selector) || root.querySelector(selector);
  }

  get chip() { return this.part(".around-chip"); }

  get chipLabel() { return this.part(".around-label"); }

  get pattern() { return this.field("search"); }

  get aroundInput() { return this.field("around"); }

  get fileInput() { return this.field("file"); }

  /** Whether this pane's kind has search fields at all. */
  get available() { return Boolean(this.pattern); }

  wire() {
    const $ = (selector) => this.pane.el.querySelector(selector);
    $(".match-prev")?.addEventListener("click", () => this.jump(-1));
    $(".match-next")?.addEventListener("click", () => this.jump(1));
    $(".download-text")?.addEventListener("click", () => this.download("text"));
    $(".download-json")?.addEventListener("click", () => this.download("json"));
    for (const button of this.pane.el.querySelectorAll(".around-clear")) {
      button.addEventListener("click", () => this.clearAround());
    }
    this.pane.el.addEventListener("input", (event) => {
      if (event.target.name !== "search" || event.target !== this.pattern) return;
      if (this.pattern.value && this.aroundInput?.value) this.clearAround();
    });
    this.pane.output.addEventListener("click", (event) => {
      const link = event.target.closest && event.target.closest("a.ln[data-line]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      this.openAround(link.dataset.file, Number(link.dataset.line));
    });
  }

  /** The link (page URL with a one-pane hash) of the view around a line of a file. */
  linkFor(file, lineNo) {
    return this.available ? this.hrefFor(this.aroundSpec(file, lineNo)) : "";
  }

  /** Open the view around `lineNo` of `file` (a path; its basename is sent) in a new pane. */
  openAround(file, lineNo) {
    if (!file || !(lineNo > 0)) return;
    this.pane.board.open(this.aroundSpec(file, lineNo));
  }

  /** Go back from a view around a line to a plain tail. */
  clearAround() {
    if (!this.aroundInput) return;
    this.aroundInput.value = "";
    if (this.fileInput) this.fileInput.value = "";
    this.syncChip();
    this.pane.board.changed();
  }

  /** Show "around line N of FILE" in the form while the pane is a view around a line. */
  syncChip() {
    if (!this.chip) return;
    const line = Number(this.aroundInput?.value) || 0;
    this.chip.hidden = !line;
    this.pane.el.classList.toggle("around-view", Boolean(line));
    if (line) {
      const file = this.fileInput?.value || this.pane.sourceName;
      this.chipLabel.textContent = t("around_chip", { n: formatCount(line), file });
    }
  }

  /** A connection begins: a new search (or a resumed one, whose repeated matches are skipped). */
  begin(resuming) {
    this.syncChip();
    const around = Number(this.aroundInput?.value) || 0;
    this.mode = around ? "around" : this.pattern?.value ? "search" : null;
    this.target = around;
    if (!resuming) {
      this.results = [];
      this.seen.clear();
      this.shownTo.clear();
      this.current = null;
      this.announcedAround = false;
      this.position.textContent = "";
    }
    this.startedAt = performance.now();
    this.bar.hidden = this.mode !== "search";
    this.bar.dataset.done = "false";
    this.progressBar.value = 0;
    this.progressBar.max = 1;
    this.summary.textContent = this.mode === "search" ? t("search_starting") : "";
  }

  /** A `matches` frame: search hits (or the lines of a view around a line). */
  matches(message) {
    const file = String(message.file ?? "");
    const items = Array.isArray(message.matches) ? message.matches : [];
    const view = this.pane.view;
    if (this.mode === "around") {
      if (!this.announcedAround) {
        this.announcedAround = true;
        view.addNotice(`— ${t("around_header", { n: formatCount(this.target), file })}`, "info");
      }
      return view.addMatches(file, items, { numbered: true, target: this.target }).then(() => {
        const row = this.pane.output.querySelector(".numbered.target");
        if (row) view.reveal(row);
      });
    }
    const fresh = items.filter((item) => {
      const key = `${file}\n${item.line_no}`;
      if (this.seen.has(key)) return false;
      this.seen.add(key);
      return true;
    });
    const first = Math.min(...fresh.map((item) => Number(item.line_no) || 0));
    if (fresh.length && first <= (this.shownTo.get(file) ?? 0)) {
      // The last match of an earlier frame showed this match's line as context: cut that
      // context back, so that each line is shown once (as grep -C does).
      view.cutContext(file, first);
      const earlier = this.results.findLast((result) => result.file === file
        && result.line_no < first);
      if (earlier) earlier.after = earlier.after.slice(0, first - earlier.line_no - 1);
      this.shownTo.set(file, first - 1);
    }
    const merged = mergeContext(file, fresh, this.shownTo);
    for (const item of merged) {
      this.results.push({ file, line_no: item.line_no, line: item.line, before: item.before,
        after: item.after });
    }
    this.pane.files?.add(file);
    this.updatePosition();
    return view.addMatches(file, merged);
  }

  /** A `progress` frame: bytes scanned of total, matches so far, maybe done. */
  progress(message) {
    const scanned = Math.max(0, Number(message.scanned) || 0);
    const total = Math.max(scanned, Number(message.total) || 0);
    const found = Math.max(0, Number(message.matches) || 0);
    const seconds = Math.max(0.001, (performance.now() - this.startedAt) / 1000);
    this.bar.hidden = false;
    this.progressBar.max = total || 1;
    this.progressBar.value = message.done ? (total || 1) : scanned;
    const params = { scanned: formatBytes(scanned), total: formatBytes(total),
      rate: formatBytes(scanned / seconds), n: formatCount(found), s: seconds.toFixed(1) };
    if (message.done) {
      this.bar.dataset.done = "true";
      this.summary.textContent = t("search_done", params);
    } else {
      this.summary.textContent = t("search_progress", params);
    }
  }

  updatePosition() {
    const rows = this.rows();
    const index = this.current ? rows.indexOf(this.current) : -1;
    this.position.textContent = rows.length || this.results.length
      ? t("match_position", { i: index >= 0 ? formatCount(index + 1) : "–",
        n: formatCount(this.results.length) }) : "";
  }

  rows() {
    return [...this.pane.output.querySelectorAll(".match-line, .numbered.target")];
  }

  /** Move to the next (delta 1) or previous (-1) match shown, wrapping around. */
  jump(delta) {
    const rows = this.rows();
    if (!rows.length) return;
    let index = this.current ? rows.indexOf(this.current) : -1;
    if (index === -1) index = delta > 0 ? 0 : rows.length - 1;
    else index = (index + delta + rows.length) % rows.length;
    this.current?.classList.remove("current");
    this.current?.removeAttribute("aria-current");
    const row = rows[index];
    this.current = row;
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    this.pane.view.reveal(row);
    row.querySelector("a.ln")?.focus({ preventScroll: true });
    this.updatePosition();
  }

  /** Download the results held: grep-like text or JSON. */
  download(format) {
    const stamp = new Date().toISOString().replace(/[:T]/g, "-").slice(0, 19);
    const name = (this.pane.sourceName || "tailboard").replace(/[^\w.-]+/g, "_");
    if (format === "json") {
      const blob = new Blob([JSON.stringify(this.results, null, 2)], { type: "application/json" });
      saveBlob(blob, `${name}-search-${stamp}.json`);
    } else {
      saveBlob(new Blob([resultsText(this.results)], { type: "text/plain" }),
        `${name}-search-${stamp}.txt`);
    }
  }
}

/** The spec fields of a view around `lineNo` of `file` (send its basename only). */
export function aroundFields(file, lineNo) {
  return { lines: String(AROUND_LINES), search: "", context: "0", rotated: "", follow: "",
    around: String(lineNo), file: shortName(file) };
}
