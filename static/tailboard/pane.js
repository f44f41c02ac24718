// One pane: a source with its options, Start/Stop, the status badge, and its LogView.
import { formatCount, formatRate, t } from "./i18n.js";
import { DEFAULT_CAP, LogView, unseenLines } from "./logview.js";
import {
  allOptionFields, fieldValue, kindByUrl, optionDefaults, optionFields, setFieldValue,
} from "./kinds.js";
import { FileToggles } from "./files.js";
import { compileFilter, compileHighlights } from "./matchers.js";
import { SearchPanel, aroundFields } from "./search.js";
import { RateMeter } from "./sparkline.js";
import { Stream, streamUrl } from "./stream.js";

const RESUME_BACKLOG = 1000;
const SEEN_IDS = 5000;

/** Describe a close code for people. */
export function closeReason(code) {
  const key = `close_${code}`;
  const text = t(key);
  return text === key ? t("close_other", { code }) : text;
}

/** Options a pane is opened with; everything a link must carry to reopen it. */
export function defaultSpec() {
  const template = document.getElementById("pane-template");
  const options = template ? optionDefaults(template.content) : {};
  return { src: "", ...options, filter: "", hl: "", wrap: true, run: false, cap: DEFAULT_CAP };
}

export class Pane {
  constructor(board, spec, number) {
    this.board = board;
    this.number = number;
    this.stream = null;
    this.resume = null;
    this.seen = new Set();
    this.state = "idle";
    const template = document.getElementById("pane-template");
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.paneObject = this;
    const $ = (selector) => this.el.querySelector(selector);
    this.form = $(".pane-form");
    this.source = $(".source");
    this.optionInputs = allOptionFields(this.el);
    this.startButton = $(".start");
    this.stopButton = $(".stop");
    this.status = $(".status");
    this.badge = $(".badge");
    this.message = $(".message");
    this.countdown = $(".countdown");
    this.retryButton = $(".retry");
    this.filterInput = $(".filter");
    this.highlightInput = $(".highlight");
    this.problem = $(".pane-problem");
    this.followButton = $(".follow");
    this.wrapButton = $(".wrap");
    this.newLines = $(".new-lines");
    this.heldLabel = $(".held");
    this.output = $(".output");
    this.meter = new RateMeter($(".spark"), $(".rate"));
    this.cap = Number(spec.cap) || DEFAULT_CAP;
    this.lifetime = new AbortController();
    this.view = new LogView(this.output, {
      cap: this.cap,
      signal: this.lifetime.signal,
      onUpdate: () => this.updateCounts(),
      onFollow: (on) => this.showFollow(on),
      hrefFor: (file, lineNo) => this.search.linkFor(file, lineNo),
    });
    this.files = new FileToggles($(".files-bar"), (hidden) => this.view.setHiddenFiles(hidden));
    this.search = new SearchPanel(this, {
      aroundSpec: (file, lineNo) => ({ ...defaultSpec(), src: this.source.value,
        ...aroundFields(file, lineNo), hl: this.highlightInput.value, run: true }),
      hrefFor: (spec) => this.board.hrefFor(spec),
    });
    this.warning = "";
    this.worker = "";
    this.shown = { held: "", newLines: "" };
    this.apply(spec);
    this.wire();
    this.setStatus("idle", t("state_idle"));
    this.updateCounts();
  }

  /** Fill the controls from a spec (see defaultSpec). */
  apply(spec) {
    if (spec.src && ![...this.source.options].some((o) => o.value === spec.src)) {
      const missing = document.createElement("option");
      missing.value = spec.src;
      missing.disabled = true;
      missing.textContent = t("source_unavailable_option", { src: spec.src });
      this.source.appendChild(missing);
    }
    if (spec.src) this.source.value = spec.src;
    else this.source.selectedIndex = this.source.options.length ? 0 : -1;
    for (const input of this.optionInputs) {
      if (spec[input.name] !== undefined) setFieldValue(input, String(spec[input.name]));
    }
    this.filterInput.value = spec.filter;
    this.highlightInput.value = spec.hl;
    this.setWrap(spec.wrap !== false);
    this.syncKind();
    this.applyFilter(false);
    this.applyHighlights(false);
    this.search?.syncChip();
  }

  /** The spec of this pane now (for the page URL). */
  spec() {
    const options = {};
    for (const input of this.optionInputs) {
      if (!(input.name in options)) options[input.name] = fieldValue(input);
    }
    return { src: this.source.value, ...options, ...this.options(false),
      filter: this.filterInput.value, hl: this.highlightInput.value,
      wrap: this.wrapButton.getAttribute("aria-pressed") === "true",
      run: this.stream !== null, cap: this.cap };
  }

  wire() {
    const changed = () => this.board.changed();
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    this.source.addEventListener("change", () => { this.syncKind(); changed(); });
    for (const input of this.optionInputs) input.addEventListener("change", changed);
    this.stopButton.addEventListener("click", () => this.stop());
    this.retryButton.addEventListener("click", () => this.stream?.retryNow());
    this.el.querySelector(".close").addEventListener("click", () => this.board.close(this));
    this.el.querySelector(".clear").addEventListener("click", () => this.view.clear());
    this.el.querySelector(".download").addEventListener("click", () => this.download());
    this.followButton.addEventListener("click", () => this.toggleFollow());
    this.newLines.addEventListener("click", () => { this.view.resume(); this.output.focus(); });
    this.wrapButton.addEventListener("click", () => {
      this.setWrap(this.wrapButton.getAttribute("aria-pressed") !== "true");
      changed();
    });
    this.filterInput.addEventListener("input", () => { this.applyFilter(true); changed(); });
    this.highlightInput.addEventListener("input", () => { this.applyHighlights(true); changed(); });
    for (const input of [this.filterInput, this.highlightInput]) {
      input.addEventListener("keydown", (event) => { if (event.key === "Escape") input.blur(); });
    }
    document.addEventListener("tailboard:theme", () => this.meter.draw(),
      { signal: this.lifetime.signal });
    this.el.addEventListener("focusin", () => this.board.activate(this));
    this.el.addEventListener("pointerdown", () => this.board.activate(this));
  }

  /** The URL segment of the chosen source's kind ("tailf", "feeds", …). */
  get kind() { return this.source.value.split(":")[0]; }
  get sourceId() { return this.source.value.split(":")[1]; }
  get sourceName() {
    const option = this.source.selectedOptions[0];
    return option ? (option.dataset.name || option.textContent.trim()) : "";
  }

  syncKind() {
    const kind = this.kind;
    this.el.dataset.kind = kind;
    for (const group of this.el.querySelectorAll(".kind-options")) {
      group.hidden = group.dataset.kind !== kind;
    }
    this.el.setAttribute("aria-label", t("pane_label", { n: this.number, source: this.sourceName }));
    this.output.setAttribute("aria-label", t("output_label", { source: this.sourceName }));
  }

  setWrap(on) {
    this.wrapButton.setAttribute("aria-pressed", String(on));
    this.output.classList.toggle("nowrap", !on);
    this.view.schedule();
  }

  toggleFollow() {
    if (this.view.follow) this.view.pause();
    else this.view.resume();
  }

  showFollow(on) {
    this.followButton.setAttribute("aria-pressed", String(on));
    this.followButton.textContent = on ? t("follow") : t("paused");
    this.el.classList.toggle("paused", !on);
    this.newLines.hidden = on;
  }

  showProblem(text) {
    this.problem.textContent = text;
    this.problem.hidden = !text;
  }

  applyFilter(render) {
    const filter = compileFilter(this.filterInput.value);
    const invalid = Boolean(filter && filter.error);
    this.filterInput.setAttribute("aria-invalid", String(invalid));
    this.filterError = invalid ? t("invalid_filter", { error: filter.error }) : "";
    this.showProblem(this.filterError || this.highlightError || "");
    if (invalid) return;
    if (render) this.view.setFilter(filter);
    else this.view.filter = filter;
  }

  applyHighlights(render) {
    const { rules, errors } = compileHighlights(this.highlightInput.value);
    this.highlightInput.setAttribute("aria-invalid", String(errors.length > 0));
    this.highlightError = errors.length ? t("invalid_highlight", { error: errors.join("; ") }) : "";
    this.showProblem(this.filterError || this.highlightError || "");
    if (render) this.view.setRules(rules);
    else this.view.rules = rules;
  }

  updateCounts() {
    const kind = kindByUrl(this.kind);
    const held = t(kind && !kind.resumable ? "held_entries" : "held_lines",
      { n: formatCount(this.view.lines) });
    if (held !== this.shown.held) this.heldLabel.textContent = this.shown.held = held;
    if (!this.view.follow) {
      const text = t("new_lines", { n: formatCount(this.view.newWhilePaused) });
      if (text !== this.shown.newLines) this.newLines.textContent = this.shown.newLines = text;
    }
  }

  /** Called once a second by the board: rates and the reconnect countdown. */
  tick() {
    this.meter.tick((n) => t("rate", { n: formatRate(n) }));
    if (this.retryAt) {
      const left = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.countdown.textContent = t("countdown", { s: left });
    }
  }

  setStatus(state, badge, message = "") {
    this.state = state;
    this.status.dataset.state = state;
    this.el.dataset.state = state;
    this.badge.textContent = badge;
    this.message.textContent = message;
    this.badge.title = state === "warning" ? message : "";
    const live = this.stream !== null;
    this.startButton.disabled = live || !this.source.value;
    this.stopButton.disabled = !live;
    for (const input of [this.source, ...this.optionInputs]) input.disabled = live;
    if (state !== "reconnecting") {
      this.retryAt = 0;
      this.countdown.textContent = "";
      this.retryButton.hidden = true;
    }
  }

  /**
   * The query options of the chosen kind: its named inputs (a resume asks for more backlog).
   * A field with data-requires="NAME" is left out while field NAME is empty.
   */
  options(resuming) {
    const options = {};
    const fields = optionFields(this.el, this.kind);
    for (const input of fields) options[input.name] = fieldValue(input);
    for (const input of fields) {
      const needs = input.dataset.requires;
      if (needs && !options[needs]) options[input.name] = "";
    }
    if (resuming && kindByUrl(this.kind)?.resumable && "lines" in options) {
      options.lines = Math.max(Number(options.lines) || 0, RESUME_BACKLOG);
    }
    return options;
  }

  /** Open the stream of the chosen source. */
  start() {
    if (this.stream || !this.source.value) return;
    const option = this.source.selectedOptions[0];
    if (!option || option.disabled) {
      this.setStatus("error", t("state_error"), t("source_unavailable"));
      return;
    }
    const kind = this.kind;
    const id = this.sourceId;
    this.seen.clear();
    this.warning = "";
    this.files.reset();
    this.meter.reset((n) => t("rate", { n: formatRate(n) }));
    this.stream = new Stream((resuming) => streamUrl(kind, id, this.options(resuming)), this.handlers());
    this.stream.start();
    this.board.changed();
  }

  /** Stop the stream for good (never reconnects). */
  stop() {
    if (!this.stream) return;
    this.setStatus("stopping", t("state_stopping"));
    this.stream.stop();
  }

  /** Drop the stream without waiting (pane closed, page left). */
  dispose() {
    if (this.stream) this.stream.close();
    this.stream = null;
    this.lifetime.abort();
  }

  handlers() {
    return {
      connecting: ({ resuming }) => {
        this.resume = resuming && kindByUrl(this.kind)?.resumable ? { lines: [] } : null;
        this.wasResumed = resuming;
        this.warning = "";
        this.search.begin(resuming);
        this.setStatus("connecting", resuming ? t("state_reconnecting") : t("state_connecting"));
      },
      status: (message) => this.onStatus(message),
      lines: (lines, file) => {
        if (this.state === "running" || this.state === "warning") this.meter.add(lines.length);
        if (file) this.files.add(file);
        if (this.resume) {
          this.resume.lines = this.resume.lines.concat(lines).slice(-5000);
          return undefined;
        }
        return this.view.addLines(lines, file);
      },
      matches: (message) => this.search.matches(message),
      progress: (message) => this.search.progress(message),
      notice: (text) => { this.view.addNotice(`— ${text}`, "notice"); },
      dropped: (count) => {
        this.view.addNotice(t("dropped", { n: formatCount(count) }), "dropped");
      },
      entries: (entries) => {
        const fresh = entries.filter((entry) => {
          const key = entry.id || `${entry.link}|${entry.title}`;
          if (this.seen.has(key) && !entry.updated) return false;
          this.seen.add(key);
          return true;
        });
        if (this.seen.size > SEEN_IDS) this.seen = new Set([...this.seen].slice(-SEEN_IDS / 2));
        this.meter.add(fresh.length);
        if (fresh.length) this.view.addEntries(fresh);
      },
      retrying: ({ attempt, seconds, code }) => {
        this.setStatus("reconnecting", t("state_reconnecting"),
          t("retrying", { reason: this.lastError || closeReason(code), n: attempt }));
        this.retryAt = Date.now() + seconds * 1000;
        this.countdown.textContent = t("countdown", { s: Math.ceil(seconds) });
        this.retryButton.hidden = false;
      },
      ended: (detail) => this.onEnded(detail),
    };
  }

  onStatus(message) {
    const text = String(message.message || "");
    if (message.task_id) this.status.dataset.taskId = message.task_id;
    switch (message.state) {
      case "queued":
        this.setStatus("queued", t("state_queued"), text);
        break;
      case "running":
        this.lastError = "";
        this.finishResume();
        if (message.worker) this.worker = String(message.worker);
        // A warning stays until a status says `"warning": null` (the stream recovered).
        if ("warning" in message) this.warning = message.warning ? String(message.warning) : "";
        if (this.warning) {
          this.setStatus("warning", t("state_warning", { host: this.worker || "?" }), this.warning);
        } else {
          this.setStatus("running", t("running_on", { host: this.worker || "?" }), text);
        }
        break;
      case "stopped":
        this.setStatus("stopped", t("state_stopped"), text);
        this.view.addNotice(`— ${t("state_stopped")}: ${text}`, "info");
        break;
      case "error":
        this.lastError = text;
        this.setStatus("error", t("state_error"), text);
        this.view.addNotice(`— ${t("state_error")}: ${text}`, "error");
        break;
      default:
        this.setStatus(String(message.state), String(message.state), text);
    }
  }

  /** After a reconnect: show only backlog lines not already held, and say so. */
  finishResume() {
    if (!this.resume) {
      if (this.wasResumed) this.view.addNotice(`— ${t("reconnected")}`, "info");
      this.wasResumed = false;
      return;
    }
    const backlog = this.resume.lines;
    this.resume = null;
    const held = this.view.tail(RESUME_BACKLOG);
    let { lines, gap } = unseenLines(held, backlog);
    if (!held.length) lines = lines.slice(-(Number(this.options(false).lines) || 0) || lines.length);
    this.view.addNotice(`— ${gap ? t("reconnected_gap") : t("reconnected")}`, gap ? "dropped" : "info");
    if (lines.length) this.view.addLines(lines);
  }

  onEnded({ code, stopped, refused }) {
    this.stream = null;
    this.resume = null;
    if (stopped) {
      if (this.state !== "stopped") this.setStatus("stopped", t("state_stopped"));
      else this.setStatus("stopped", this.badge.textContent, this.message.textContent);
    } else if (refused) {
      const hint = code === 4401 ? ` ${t("login_again")}` : "";
      this.setStatus("error", t("state_refused"), `${this.lastError || closeReason(code)}${hint}`);
    } else if (code === 1000 && (this.state === "stopped" || this.state === "error")) {
      this.setStatus(this.state, this.badge.textContent, this.message.textContent);
    } else {
      this.setStatus("error", t("state_error"), this.lastError || closeReason(code));
    }
    this.lastError = "";
    this.board.changed();
  }

  download() {
    const blob = this.view.blob();
    const stamp = new Date().toISOString().replace(/[:T]/g, "-").slice(0, 19);
    const name = (this.sourceName || "tailboard").replace(/[^\w.-]+/g, "_");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${name}-${stamp}.${blob.type === "application/json" ? "json" : "log"}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
}
