// What one pane holds and shows: a capped store of records (lines, notices, feed entries) and
// their rows in the DOM, rendered in requestAnimationFrame batches with a time budget, so a
// firehose never blocks the page. Follow mode, the pause buffer, filter and highlights live here,
// and so do the match counts, the lines around a clicked line, times and structured fields.
import { fullTime, localClock, relativeTime, stampTime } from "./clock.js";
import { entryNode, entryText } from "./entries.js";
import { fieldLevel, fieldMessage, parseFields } from "./fields.js";
import { fileTag } from "./files.js";
import { highlightSegments, leadingTimestamp, lineLevel } from "./matchers.js";
import { matchNode, numberedNode } from "./matchrows.js";

export const DEFAULT_CAP = 10000;
const CHUNK_ROWS = 200;
const FRAME_BUDGET_MS = 8;
const BOTTOM_SLACK_PX = 24;
/** Levels a server may give lines (`levels` of a `lines` frame): the classes lvl-*. */
const LEVEL_NAMES = new Set(["error", "warn", "info", "debug"]);
/** Lines shown before and after a clicked line. */
export const CONTEXT_LINES = 5;

function countsAsLine(record) {
  return record.kind !== "notice" && record.kind !== "dropped" && record.kind !== "error"
    && record.kind !== "info";
}

function filtered(record) {
  return record.kind === "line" || record.kind === "entry" || record.kind === "match"
    || record.kind === "numbered";
}

/** A queue that drops from the front in O(1) (amortised). */
class Deque {
  constructor() { this.items = []; this.head = 0; }
  get length() { return this.items.length - this.head; }
  push(item) { this.items.push(item); }
  at(i) { return this.items[this.head + i]; }
  first() { return this.items[this.head]; }
  dropFront(n) {
    this.head += Math.min(n, this.length);
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
  shift() { const item = this.items[this.head]; this.dropFront(1); return item; }
  clear() { this.items = []; this.head = 0; }
  *[Symbol.iterator]() { for (let i = this.head; i < this.items.length; i += 1) yield this.items[i]; }
}

/** One pane's output: call addLines/addNotice/addEntries; it renders when the page can. */
export class LogView {
  constructor(output, { cap = DEFAULT_CAP, onUpdate = () => {}, onFollow = () => {}, signal,
    hrefFor = () => "", sourceTag = () => null, onHits = () => {} } = {}) {
    this.output = output;
    this.hrefFor = hrefFor;
    this.sourceTag = sourceTag;
    this.onHits = onHits;
    this.hiddenFiles = new Set();
    this.hiddenSources = new Set();
    this.tagSources = false;
    this.timeMode = "sent";
    this.counts = { total: 0, pass: 0, hit: 0 };
    this.anchor = null;
    this.cap = cap;
    this.onUpdate = onUpdate;
    this.onFollow = onFollow;
    this.held = new Deque();
    this.pending = new Deque();
    this.nextN = 0;
    this.lineCount = 0;
    this.newWhilePaused = 0;
    this.follow = true;
    this.filter = null;
    this.rules = [];
    this.scheduled = false;
    this.waiters = [];
    this.autoTop = 0;
    // Only a person scrolling pauses or resumes: layout changes (resizes, more panes) scroll too.
    this.intentUntil = 0;
    this.dragging = false;
    const intent = () => { this.intentUntil = performance.now() + 800; this.anchor = null; };
    output.addEventListener("scroll", () => this.scrolled(), { passive: true });
    output.addEventListener("wheel", (event) => {
      intent();
      if (event.deltaY < 0 && this.follow) this.pause();
    }, { passive: true });
    output.addEventListener("keydown", intent);
    output.addEventListener("touchmove", intent, { passive: true });
    output.addEventListener("click", (event) => this.clicked(event));
    output.addEventListener("pointerdown", () => { this.dragging = true; });
    window.addEventListener("pointerup", () => {
      if (this.dragging) intent();
      this.dragging = false;
    }, { signal });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.settle(Infinity);
      else this.schedule();
    }, { signal });
    const resized = new ResizeObserver(() => { if (this.follow) this.stick(); });
    resized.observe(output);
    signal?.addEventListener("abort", () => resized.disconnect());
  }

  /** Scroll to the newest row (or keep the row revealed by reveal() in view). */
  stick() {
    if (this.anchor && this.anchor.isConnected) {
      this.anchor.scrollIntoView({ block: "center" });
      this.autoTop = this.output.scrollTop;
      return;
    }
    this.anchor = null;
    this.output.scrollTop = this.output.scrollHeight;
    this.autoTop = this.output.scrollTop;
  }

  /** Lines held now (not counting notices). */
  get lines() { return this.lineCount; }

  /** Keep `row` in view (centred) while records arrive, until a person scrolls or resumes. */
  reveal(row) {
    this.anchor = row;
    this.stick();
  }

  /**
   * Take a batch of log lines (of `file` in a multi-file stream; `levels`, when the server
   * knows them, the level of each line); the Promise settles once they are rendered (or set
   * aside).
   */
  addLines(lines, file, src, levels = null, stream = "") {
    const start = Math.max(0, lines.length - this.cap);
    const records = [];
    const at = Date.now();
    for (let i = start; i < lines.length; i += 1) {
      const record = { n: this.nextN++, kind: "line", text: String(lines[i]), at };
      if (file) record.file = String(file);
      if (src) record.src = src;
      if (levels && LEVEL_NAMES.has(levels[i])) record.level = levels[i];
      if (stream === "stderr") record.stream = stream;
      records.push(record);
    }
    if (!this.follow) this.newWhilePaused += lines.length;
    return this.take(records, lines.length - start);
  }

  /** Show a notice inline: kind is "notice", "dropped", "error" or "info". */
  addNotice(text, kind = "notice") {
    return this.take([{ n: this.nextN++, kind, text }], 0);
  }

  /**
   * Take search matches of one file ({line_no, line, before, after}), or with `numbered` the
   * lines of a view around `target` (line numbers shown, the target marked).
   */
  addMatches(file, items, { numbered = false, target = 0 } = {}) {
    const records = items.slice(-this.cap).map((item) => {
      const lineNo = Number(item.line_no) || 0;
      const record = { n: this.nextN++, kind: numbered ? "numbered" : "match", file: String(file),
        lineNo, text: String(item.line ?? "") };
      if (numbered) record.target = lineNo === target;
      else {
        record.before = Array.isArray(item.before) ? item.before.map(String) : [];
        record.after = Array.isArray(item.after) ? item.after.map(String) : [];
      }
      return record;
    });
    if (!this.follow) this.newWhilePaused += records.length;
    return this.take(records, records.length);
  }

  /**
   * Cut the after-context of the last match of `file` before line `lineNo` short of that line
   * (a match that came in a later frame shows it); its row is rebuilt if it is shown.
   */
  cutContext(file, lineNo) {
    for (let i = this.held.length - 1; i >= 0; i -= 1) {
      const record = this.held.at(i);
      if (record.kind !== "match" || record.file !== file || record.lineNo >= lineNo) continue;
      const keep = Math.max(0, lineNo - record.lineNo - 1);
      if (record.after.length <= keep) return;
      record.after = record.after.slice(0, keep);
      const shown = [...this.output.querySelectorAll(".match")].findLast(
        (node) => node.tbN === record.n);
      shown?.replaceWith(this.row(record));
      return;
    }
  }

  /** Take feed entries (oldest first). */
  addEntries(entries, src) {
    const at = Date.now();
    const records = entries.slice(-this.cap).map((entry) => {
      const record = { n: this.nextN++, kind: "entry", text: entryText(entry), entry, at };
      if (src) record.src = src;
      return record;
    });
    if (!this.follow) this.newWhilePaused += records.length;
    return this.take(records, records.length);
  }

  take(records, lineCount) {
    let hits = 0;
    let sample = "";
    for (const record of records) {
      this.classify(record);
      if (record.hit && !record.hidden) {
        hits += 1;
        sample = record.text;
      }
      this.held.push(record);
      this.pending.push(record);
    }
    this.lineCount += lineCount;
    if (hits) this.onHits(hits, sample);
    this.trim();
    this.schedule();
    if (!this.follow || document.hidden) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n: this.nextN - 1, resolve }));
  }

  /** Keep at most `cap` records held and pending; older ones are discarded. */
  trim() {
    const excess = this.held.length - this.cap;
    if (excess > 0) {
      let lines = 0;
      for (let i = 0; i < excess; i += 1) {
        const record = this.held.at(i);
        if (countsAsLine(record)) lines += 1;
        this.count(record, -1);
      }
      this.held.dropFront(excess);
      this.lineCount -= lines;
    }
    const over = this.pending.length - this.cap;
    if (over > 0) this.pending.dropFront(over);
  }

  schedule() {
    if (this.scheduled || document.hidden) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
  }

  /** Render pending records within the frame budget; keep the DOM to what is held. */
  flush() {
    this.scheduled = false;
    if (!this.follow) {
      this.settle(Infinity);
      this.onUpdate();
      return;
    }
    const began = performance.now();
    const fragment = document.createDocumentFragment();
    let chunk = this.output.lastElementChild;
    let room = chunk ? CHUNK_ROWS - chunk.childElementCount : 0;
    let newChunk = null;
    let done = -1;
    while (this.pending.length) {
      const record = this.pending.shift();
      done = record.n;
      if (this.shows(record)) {
        const row = this.row(record);
        if (room > 0) {
          (newChunk ? newChunk : fragment).appendChild(row);
          room -= 1;
        } else {
          if (newChunk) this.output.appendChild(newChunk);
          newChunk = document.createElement("div");
          newChunk.className = "chunk";
          newChunk.appendChild(row);
          room = CHUNK_ROWS - 1;
        }
      }
      // Checked every row: one row's filter and highlights may take milliseconds on a long line.
      if (performance.now() - began > FRAME_BUDGET_MS) break;
    }
    if (fragment.firstChild) chunk.appendChild(fragment);
    if (newChunk) this.output.appendChild(newChunk);
    this.dropStaleRows();
    this.stick();
    this.settle(this.pending.length ? done : Infinity);
    if (this.pending.length) this.schedule();
    this.onUpdate();
  }

  /** Whether a record passes the filter and the hidden files and sources. */
  shows(record) {
    if (!filtered(record)) return true;
    return !record.hidden && record.pass;
  }

  /** Note whether a record is hidden, passes the filter, matches a highlight; count it. */
  classify(record) {
    if (!filtered(record)) return;
    record.hidden = Boolean((record.file && this.hiddenFiles.has(record.file))
      || (record.src && this.hiddenSources.has(record.src)));
    record.pass = !this.filter || this.filter.test(record.text);
    record.hit = this.rules.length > 0 && this.rules.some((rule) => rule.matcher.test(record.text));
    this.count(record, 1);
  }

  count(record, sign) {
    if (!filtered(record) || record.hidden) return;
    this.counts.total += sign;
    if (record.pass) this.counts.pass += sign;
    if (record.hit) this.counts.hit += sign;
  }

  /** Classify every held record again (the filter, highlights or hidden sets changed). */
  recount() {
    this.counts = { total: 0, pass: 0, hit: 0 };
    for (const record of this.held) this.classify(record);
  }

  /** Resolve the render promises of records up to `n`. */
  settle(n) {
    while (this.waiters.length && this.waiters[0].n <= n) this.waiters.shift().resolve();
  }

  /** Remove rows of records no longer held (the cap moved past them). */
  dropStaleRows() {
    const first = this.held.length ? this.held.first().n : this.nextN;
    let chunk = this.output.firstElementChild;
    while (chunk && chunk.lastElementChild && chunk.lastElementChild.tbN < first) {
      const next = chunk.nextElementSibling;
      chunk.remove();
      chunk = next;
    }
    if (chunk && chunk.firstElementChild && chunk.firstElementChild.tbN < first) {
      let last = chunk.firstElementChild;
      while (last.nextElementSibling && last.nextElementSibling.tbN < first) last = last.nextElementSibling;
      const range = document.createRange();
      range.setStartBefore(chunk.firstElementChild);
      range.setEndAfter(last);
      range.deleteContents();
    }
    while (chunk && !chunk.firstElementChild) {
      const next = chunk.nextElementSibling;
      chunk.remove();
      chunk = next;
    }
  }

  row(record) {
    if (record.kind === "entry") {
      const node = entryNode(record.entry, (element, text) => this.fill(element, text));
      node.tbN = record.n;
      const tag = this.tagSources && record.src ? this.sourceTag(record.src) : null;
      if (tag) node.firstElementChild.prepend(tag);
      return node;
    }
    if (record.kind === "match" || record.kind === "numbered") {
      const decorate = (element, text) => this.fill(element, text);
      const node = record.kind === "match"
        ? matchNode(record, decorate, this.hrefFor(record.file, record.lineNo))
        : numberedNode(record, decorate);
      node.tbN = record.n;
      return node;
    }
    const row = document.createElement("div");
    row.tbN = record.n;
    if (record.kind === "line") {
      const text = record.text;
      if (record.fields === undefined) record.fields = parseFields(text);
      const parsed = record.fields;
      const level = record.level || fieldLevel(parsed) || lineLevel(text);
      row.className = level ? `line lvl-${level}` : "line";
      if (record.stream) row.classList.add(record.stream);
      if (parsed) row.classList.add("structured");
      if (this.tagSources && record.src) {
        const tag = this.sourceTag(record.src);
        if (tag) row.appendChild(tag);
      }
      if (record.file) row.appendChild(fileTag(record.file));
      if (record.stream) {
        const tag = document.createElement("span");
        tag.className = "stream-tag";
        tag.textContent = record.stream;
        row.appendChild(tag);
      }
      const stamp = parsed ? parsed.stamp : leadingTimestamp(text);
      this.stamp(row, record, stamp);
      if (parsed) this.fillFields(row, parsed);
      else this.fill(row, text.slice(stamp.length));
    } else {
      row.className = `notice notice-${record.kind}`;
      row.textContent = record.text;
    }
    return row;
  }

  /** The time cell of a line: its own timestamp as sent, or a time in local/relative form. */
  stamp(row, record, stamp) {
    if (this.timeMode === "sent") {
      if (!stamp) return;
      const span = document.createElement("span");
      span.className = "ts";
      span.textContent = stamp;
      row.appendChild(span);
      return;
    }
    const own = stamp ? stampTime(stamp) : NaN;
    const at = Number.isFinite(own) ? own : record.at;
    const time = document.createElement("time");
    time.className = Number.isFinite(own) ? "ts" : "ts ts-received";
    time.dateTime = new Date(at).toISOString();
    time.title = stamp ? `${stamp} · ${fullTime(at)}` : fullTime(at);
    time.tbAt = at;
    time.textContent = this.timeMode === "relative" ? relativeTime(at) : localClock(at);
    row.appendChild(time);
    row.appendChild(document.createTextNode(" "));
  }

  /** The message and key=value chips of a structured line (highlights inside each part). */
  fillFields(row, parsed) {
    const message = fieldMessage(parsed);
    if (message !== null) {
      const span = document.createElement("span");
      span.className = "msg";
      this.fill(span, message);
      row.appendChild(span);
    }
    for (const [key, value] of parsed.fields) {
      if (message !== null && (key === "msg" || key === "message") && value === message) continue;
      const chip = document.createElement("span");
      chip.className = "kv";
      const name = document.createElement("span");
      name.className = "k";
      name.textContent = key;
      const text = document.createElement("span");
      text.className = "v";
      this.fill(text, value);
      chip.append(name, "=", text);
      row.appendChild(document.createTextNode(" "));
      row.appendChild(chip);
    }
  }

  /** Show times as sent ("sent"), in local time ("local") or relative to now ("relative"). */
  setTimeMode(mode) {
    if (mode === this.timeMode) return;
    this.timeMode = mode;
    this.rerender();
  }

  /** Bring relative times up to date (called once a second). */
  refreshTimes() {
    if (this.timeMode !== "relative") return;
    const now = Date.now();
    for (const time of this.output.querySelectorAll("time.ts")) {
      if (time.tbAt === undefined) continue;
      const text = relativeTime(time.tbAt, now);
      if (time.textContent !== text) time.textContent = text;
    }
  }

  /** A click on a line (not a link, not a selection) shows or hides the lines around it. */
  clicked(event) {
    if (event.button !== 0 || event.target.closest("a, button, .ctx-block")) return;
    const selection = window.getSelection && window.getSelection();
    if (selection && !selection.isCollapsed && String(selection).trim()) return;
    const row = event.target.closest(".line");
    if (!row || row.tbN === undefined || row.classList.contains("numbered")) return;
    this.toggleContext(row);
  }

  /** The held records around the record numbered `n` (up to `around` before and after). */
  around(n, around = CONTEXT_LINES) {
    if (!this.held.length) return null;
    const index = n - this.held.first().n;
    if (index < 0 || index >= this.held.length || this.held.at(index).n !== n) return null;
    const before = [];
    for (let i = index - 1; i >= 0 && before.length < around; i -= 1) {
      const record = this.held.at(i);
      if (record.kind === "line" || record.kind === "entry") before.unshift(record);
    }
    const after = [];
    for (let i = index + 1; i < this.held.length && after.length < around; i += 1) {
      const record = this.held.at(i);
      if (record.kind === "line" || record.kind === "entry") after.push(record);
    }
    return { before, after };
  }

  /** Expand (or fold again) the lines around a row, whatever the filter hides. */
  toggleContext(row) {
    const mine = (element) => element && element.classList.contains("ctx-block")
      && element.tbN === row.tbN;
    if (row.classList.contains("expanded")) {
      if (mine(row.previousElementSibling)) row.previousElementSibling.remove();
      if (mine(row.nextElementSibling)) row.nextElementSibling.remove();
      row.classList.remove("expanded");
      return;
    }
    const found = this.around(row.tbN);
    if (!found) return;
    const part = (records, where) => {
      const box = document.createElement("div");
      box.className = `ctx-block ctx-${where}`;
      box.tbN = row.tbN;
      for (const record of records) {
        const line = document.createElement("div");
        line.className = `ctx-line${this.shows(record) ? "" : " ctx-hidden"}`;
        if (this.tagSources && record.src) {
          const tag = this.sourceTag(record.src);
          if (tag) line.appendChild(tag);
        }
        if (record.file) line.appendChild(fileTag(record.file));
        this.fill(line, record.text);
        box.appendChild(line);
      }
      return box;
    };
    row.before(part(found.before, "before"));
    row.after(part(found.after, "after"));
    row.classList.add("expanded");
    this.reveal(row);
  }

  /** Append text to an element, wrapping highlight matches in <mark> (text nodes only). */
  fill(element, text) {
    const segments = this.rules.length ? highlightSegments(text, this.rules) : null;
    if (!segments) {
      if (element.firstChild) element.appendChild(document.createTextNode(text));
      else element.textContent = text;
      return;
    }
    for (const [part, colour] of segments) {
      if (colour === null) {
        element.appendChild(document.createTextNode(part));
      } else {
        const mark = document.createElement("mark");
        mark.className = `hl hl-${colour}`;
        mark.textContent = part;
        element.appendChild(mark);
      }
    }
  }

  /** Rebuild the rows from what is held (after a filter or highlight change). */
  rerender() {
    this.output.replaceChildren();
    this.pending.clear();
    for (const record of this.held) this.pending.push(record);
    this.newWhilePaused = 0;
    this.setFollow(true);
    this.schedule();
  }

  /** Show only records matching `filter` ({test}) or all when null. */
  setFilter(filter) {
    this.filter = filter;
    this.recount();
    this.rerender();
  }

  /** Hide the records of these files (a Set of paths). */
  setHiddenFiles(files) {
    this.hiddenFiles = files;
    this.recount();
    this.rerender();
  }

  /** Hide the records of these sources (a Set of source values, "tailf:3"). */
  setHiddenSources(sources) {
    this.hiddenSources = sources;
    this.recount();
    this.rerender();
  }

  /** Tag each row with its source (a pane that follows more than one). */
  setTagSources(on) {
    if (this.tagSources === on) return;
    this.tagSources = on;
    this.rerender();
  }

  /** Highlight with compiled rules ([{matcher, colour}] from compileHighlights). */
  setRules(rules) {
    this.rules = rules;
    this.recount();
    this.rerender();
  }

  /** Forget everything held and shown. */
  clear() {
    this.held.clear();
    this.pending.clear();
    this.lineCount = 0;
    this.newWhilePaused = 0;
    this.counts = { total: 0, pass: 0, hit: 0 };
    this.output.replaceChildren();
    this.settle(Infinity);
    this.onUpdate();
  }

  /** Stop moving: new records wait in the (capped) pending buffer. */
  pause() {
    if (!this.follow) return;
    this.newWhilePaused = 0;
    this.setFollow(false);
  }

  /** Render what arrived while paused and stick to the bottom again. */
  resume() {
    this.anchor = null;
    if (this.follow) return;
    this.setFollow(true);
    this.schedule();
  }

  setFollow(on) {
    if (this.follow === on) return;
    this.follow = on;
    if (on) this.newWhilePaused = 0;
    this.onFollow(on);
    this.onUpdate();
  }

  scrolled() {
    if (!this.dragging && performance.now() > this.intentUntil) return;
    const el = this.output;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK_PX;
    if (this.follow && !atBottom && el.scrollTop < this.autoTop - 2) this.pause();
    else if (!this.follow && atBottom) this.resume();
  }

  /** The text of what the pane holds, as a downloadable Blob. */
  blob() {
    const entries = [];
    const lines = [];
    for (const record of this.held) {
      if (record.kind === "line") lines.push(record.text);
      else if (record.kind === "entry") entries.push(record.entry);
    }
    if (entries.length) {
      return new Blob([JSON.stringify(entries, null, 2)], { type: "application/json" });
    }
    return new Blob([lines.join("\n") + (lines.length ? "\n" : "")], { type: "text/plain" });
  }

  /**
   * The last `n` held line texts (of source `src`, of `file` and of output `stream`, if given),
   * oldest first (for a resume); file "" means lines without a file, stream "" stdout or none.
   */
  tail(n, src, file, stream) {
    const out = [];
    for (let i = this.held.length - 1; i >= 0 && out.length < n; i -= 1) {
      const record = this.held.at(i);
      if (record.kind === "line" && (!src || !record.src || record.src === src)
        && (file === undefined || (record.file || "") === file)
        && (stream === undefined || (record.stream || "") === stream)) out.push(record.text);
    }
    return out.reverse();
  }
}

/**
 * Lines of a resume backlog `fresh` that come after what was held (`held`, oldest first):
 * finds where the held tail ends inside the backlog. Returns {lines, gap}.
 */
export function unseenLines(held, fresh, window = 20) {
  if (!held.length) return { lines: fresh, gap: false };
  const last = held.length - 1;
  for (let j = fresh.length - 1; j >= 0; j -= 1) {
    if (fresh[j] !== held[last]) continue;
    const depth = Math.min(window, j + 1, held.length);
    let ok = true;
    for (let i = 1; i < depth; i += 1) {
      if (fresh[j - i] !== held[last - i]) { ok = false; break; }
    }
    if (ok) return { lines: fresh.slice(j + 1), gap: false };
  }
  return { lines: fresh, gap: fresh.length > 0 };
}
