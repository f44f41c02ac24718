// One pane: one or more sources (a Member each, with its own stream and status row) and their
// options, Start/Stop, the picker, and the LogView their lines share, interleaved by arrival.
import { PaneAlerts } from "./alerts.js";
import { TIME_MODES } from "./clock.js";
import { compileRowFilter } from "./fields.js";
import { FileToggles } from "./files.js";
import { formatCount, formatRate, t } from "./i18n.js";
import {
  allOptionFields, fieldValue, kindByUrl, kindOfSource, optionDefaults, optionFields,
  setFieldValue,
} from "./kinds.js";
import { DEFAULT_CAP, LogView } from "./logview.js";
import { compileHighlights } from "./matchers.js";
import { MAX_SOURCES, Member, SOURCE_COLOURS, closeReason } from "./member.js";
import { Picker, sourceCatalog } from "./picker.js";
import { SearchPanel, aroundFields } from "./search.js";
import { RateMeter } from "./sparkline.js";

export { closeReason };

const RESUME_BACKLOG = 1000;

/** Options a pane is opened with; everything a link must carry to reopen it. */
export function defaultSpec() {
  const template = document.getElementById("pane-template");
  const options = template ? optionDefaults(template.content) : {};
  return { src: "", more: [], hide: [], ...options, filter: "", hl: "", wrap: true, run: false,
    cap: DEFAULT_CAP, time: "sent", alert: false };
}

export class Pane {
  constructor(board, spec, number) {
    this.board = board;
    this.number = number;
    this.members = [];
    this.hiddenSources = new Set();
    const template = document.getElementById("pane-template");
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.paneObject = this;
    const $ = (selector) => this.el.querySelector(selector);
    this.form = $(".pane-form");
    this.source = $(".source");
    this.optionInputs = allOptionFields(this.el);
    this.startButton = $(".start");
    this.stopButton = $(".stop");
    this.rows = $(".source-rows");
    this.rowTemplate = $(".source-row").cloneNode(true);
    this.blankRow = $(".source-row");
    this.filterInput = $(".filter");
    this.highlightInput = $(".highlight");
    this.filterCount = $(".filter-count");
    this.highlightCount = $(".highlight-count");
    this.problem = $(".pane-problem");
    this.followButton = $(".follow");
    this.wrapButton = $(".wrap");
    this.timeButton = $(".time-mode");
    this.newLines = $(".new-lines");
    this.heldLabel = $(".held");
    this.output = $(".output");
    this.meter = new RateMeter($(".spark"), $(".rate"));
    this.meter.reset((n) => t("rate", { n: formatRate(n) }));
    this.cap = Number(spec.cap) || DEFAULT_CAP;
    this.lifetime = new AbortController();
    this.view = new LogView(this.output, {
      cap: this.cap,
      signal: this.lifetime.signal,
      onUpdate: () => this.updateCounts(),
      onFollow: (on) => this.showFollow(on),
      hrefFor: (file, lineNo) => this.search.linkFor(file, lineNo),
      sourceTag: (src) => this.members.find((member) => member.src === src)?.tag() || null,
      onHits: (n, sample) => this.alerts.matched(n, sample),
    });
    this.alerts = new PaneAlerts(this, $(".alert-toggle"), board.titleBadge,
      { signal: this.lifetime.signal });
    this.files = new FileToggles($(".files-bar"), (hidden) => this.view.setHiddenFiles(hidden));
    this.search = new SearchPanel(this, {
      aroundSpec: (file, lineNo) => ({ ...defaultSpec(), src: this.primarySrc,
        ...aroundFields(file, lineNo), hl: this.highlightInput.value, run: true }),
      hrefFor: (spec) => this.board.hrefFor(spec),
    });
    const pickerInput = $(".picker-input");
    this.picker = new Picker({
      input: pickerInput,
      panel: $(".picker-panel"),
      catalog: sourceCatalog(this.source),
      idPrefix: `picker-${number}`,
      isChosen: (src) => this.members.some((member) => member.src === src),
      choose: (src) => this.chooseSource(src),
      signal: this.lifetime.signal,
    });
    this.shown = { held: "", newLines: "", filter: "", highlight: "" };
    this.apply(spec);
    this.wire();
    this.updateCounts();
  }

  /** Fill the controls from a spec (see defaultSpec). */
  apply(spec) {
    const srcs = [...new Set([spec.src, ...(spec.more || [])].filter(Boolean))];
    for (const src of srcs) {
      if (![...this.source.options].some((o) => o.value === src)) {
        const missing = document.createElement("option");
        missing.value = src;
        missing.disabled = true;
        missing.textContent = t("source_unavailable_option", { src });
        this.source.appendChild(missing);
      }
    }
    for (const input of this.optionInputs) {
      if (spec[input.name] !== undefined) setFieldValue(input, String(spec[input.name]));
    }
    this.setSources(srcs);
    this.hiddenSources = new Set((spec.hide || []).filter((src) => srcs.includes(src)));
    for (const member of this.members) {
      member.toggleButton.setAttribute("aria-pressed", String(!this.hiddenSources.has(member.src)));
    }
    this.view.hiddenSources = new Set(this.hiddenSources);
    this.filterInput.value = spec.filter;
    this.highlightInput.value = spec.hl;
    this.setWrap(spec.wrap !== false);
    this.setTimeMode(TIME_MODES.includes(spec.time) ? spec.time : "sent");
    this.alerts.enabled = Boolean(spec.alert);
    this.alerts.button.setAttribute("aria-pressed", String(this.alerts.enabled));
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
    return { src: this.primarySrc, more: this.members.slice(1).map((member) => member.src),
      hide: [...this.hiddenSources], ...options, ...this.options(false),
      filter: this.filterInput.value, hl: this.highlightInput.value,
      wrap: this.wrapButton.getAttribute("aria-pressed") === "true",
      run: this.live, cap: this.cap, time: this.view.timeMode, alert: this.alerts.enabled };
  }

  wire() {
    const changed = () => this.board.changed();
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    this.source.addEventListener("change", () => {
      const chosen = this.source.value;
      this.setSources([chosen, ...this.members.slice(1).map((m) => m.src).filter((s) => s !== chosen)]);
      this.picker.close();
      changed();
    });
    for (const input of this.optionInputs) input.addEventListener("change", changed);
    this.stopButton.addEventListener("click", () => this.stop());
    this.el.querySelector(".close").addEventListener("click", () => this.board.close(this));
    this.el.querySelector(".clear").addEventListener("click", () => this.view.clear());
    this.el.querySelector(".download").addEventListener("click", () => this.download());
    this.followButton.addEventListener("click", () => this.toggleFollow());
    this.newLines.addEventListener("click", () => { this.view.resume(); this.output.focus(); });
    this.wrapButton.addEventListener("click", () => {
      this.setWrap(this.wrapButton.getAttribute("aria-pressed") !== "true");
      changed();
    });
    this.timeButton.addEventListener("click", () => {
      const next = TIME_MODES[(TIME_MODES.indexOf(this.view.timeMode) + 1) % TIME_MODES.length];
      this.setTimeMode(next);
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

  /** The first source (the one the Source list shows), or "". */
  get primarySrc() {
    return this.members[0]?.src || "";
  }

  /** The URL segment of the first source's kind ("tailf", "feeds", …). */
  get kind() { return this.primarySrc.split(":")[0]; }
  get sourceId() { return this.primarySrc.split(":")[1]; }
  get sourceName() { return this.members[0]?.name || ""; }

  /** The pane's sources for people: "alpha + beta + deploys". */
  sourceLabel() {
    return this.members.map((member) => member.name).join(" + ");
  }

  /** Whether any source of this pane is streaming. */
  get live() { return this.members.some((member) => member.live); }

  /** The first source's stream (what a one-source pane has). */
  get stream() { return this.members[0]?.stream || null; }

  /** Follow exactly these sources (in order); sources already followed keep their stream. */
  setSources(srcs) {
    const wanted = [...new Set(srcs.filter((src) => kindOfSource(src) !== null))];
    const keep = new Map(this.members.map((member) => [member.src, member]));
    for (const member of this.members) {
      if (!wanted.includes(member.src)) {
        member.dispose();
        this.hiddenSources.delete(member.src);
      }
    }
    const next = [];
    for (const src of wanted) {
      let member = keep.get(src);
      if (!member) {
        let colour = 0;
        const taken = new Set([...keep.values()].filter((m) => wanted.includes(m.src)).map((m) => m.colour));
        for (const m of next) taken.add(m.colour);
        while (taken.has(colour) && colour < SOURCE_COLOURS - 1) colour += 1;
        member = new Member(this, src, this.rowTemplate.cloneNode(true), colour);
      }
      next.push(member);
    }
    this.members = next;
    this.source.value = this.primarySrc;
    if (!this.primarySrc) this.source.selectedIndex = -1;
    this.rows.replaceChildren(...(next.length ? next.map((member) => member.row) : [this.blankRow]));
    this.view.hiddenSources = new Set(this.hiddenSources);
    this.view.setTagSources(next.length > 1);
    this.el.classList.toggle("merged", next.length > 1);
    for (const member of next) {
      member.toggleButton.hidden = next.length < 2;
      member.removeButton.hidden = next.length < 2;
    }
    this.syncKind();
    this.syncControls();
    this.picker?.refresh();
  }

  /** The picker chose a source: follow it too (started at once if the pane runs), or no more. */
  chooseSource(src) {
    const srcs = this.members.map((member) => member.src);
    if (srcs.includes(src)) {
      this.setSources(srcs.filter((other) => other !== src));
    } else if (srcs.length >= MAX_SOURCES) {
      this.showProblem(t("too_many_sources", { n: MAX_SOURCES }));
      return;
    } else {
      const running = this.live;
      this.setSources([...srcs, src]);
      if (running) this.members[this.members.length - 1].start();
    }
    this.board.changed();
  }

  /** Stop following one source of a merged pane. */
  removeSource(member) {
    this.setSources(this.members.filter((other) => other !== member).map((other) => other.src));
    this.board.changed();
    (this.members[0]?.toggleButton || this.picker.input).focus();
  }

  /** Show or hide the lines of one source. */
  toggleSource(member) {
    const shown = this.hiddenSources.has(member.src);
    if (shown) this.hiddenSources.delete(member.src);
    else this.hiddenSources.add(member.src);
    member.toggleButton.setAttribute("aria-pressed", String(shown));
    this.view.setHiddenSources(new Set(this.hiddenSources));
    this.board.changed();
  }

  /** Show the options of every kind this pane follows; name the pane after its sources. */
  syncKind() {
    const kinds = new Set(this.members.map((member) => member.kind));
    // Before a source is chosen, the options of the first source's kind can be set already.
    const first = [...this.source.options].find((option) => option.value && !option.disabled);
    if (!kinds.size && first) kinds.add(first.value.split(":")[0]);
    this.el.dataset.kind = this.kind;
    for (const group of this.el.querySelectorAll(".kind-options")) {
      group.hidden = !kinds.has(group.dataset.kind);
    }
    const label = this.sourceLabel();
    this.el.setAttribute("aria-label", t("pane_label", { n: this.number, source: label }));
    this.output.setAttribute("aria-label", t("output_label", { source: label }));
  }

  /** Buttons and inputs follow the sources' states; the pane's state is the first source's. */
  syncControls() {
    const live = this.live;
    const state = this.members[0]?.state || "idle";
    this.el.dataset.state = state;
    this.startButton.disabled = !this.members.length || this.members.every((m) => m.live);
    this.stopButton.disabled = !live;
    for (const input of [this.source, ...this.optionInputs]) input.disabled = live;
  }

  setWrap(on) {
    this.wrapButton.setAttribute("aria-pressed", String(on));
    this.output.classList.toggle("nowrap", !on);
    this.view.schedule();
  }

  setTimeMode(mode) {
    this.view.setTimeMode(mode);
    this.timeButton.dataset.mode = mode;
    this.timeButton.textContent = t(`time_${mode}`);
    this.timeButton.title = t("time_toggle");
  }

  toggleFollow() {
    if (this.view.follow) this.view.pause();
    else this.view.resume();
  }

  showFollow(on) {
    if (on && !document.hidden) this.board.titleBadge.reset();
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
    const filter = compileRowFilter(this.filterInput.value);
    const invalid = Boolean(filter && filter.error);
    this.filterInput.setAttribute("aria-invalid", String(invalid));
    this.filterError = invalid ? t("invalid_filter", { error: filter.error }) : "";
    this.showProblem(this.filterError || this.highlightError || "");
    if (invalid) return;
    if (render) this.view.setFilter(filter);
    else this.view.filter = filter;
    this.updateCounts();
  }

  applyHighlights(render) {
    const { rules, errors } = compileHighlights(this.highlightInput.value);
    this.highlightInput.setAttribute("aria-invalid", String(errors.length > 0));
    this.highlightError = errors.length ? t("invalid_highlight", { error: errors.join("; ") }) : "";
    this.showProblem(this.filterError || this.highlightError || "");
    if (render) this.view.setRules(rules);
    else this.view.rules = rules;
    this.updateCounts();
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
    const { total, pass, hit } = this.view.counts;
    const of = (n) => t("count_of", { n: formatCount(n), total: formatCount(total) });
    const filterText = this.filterInput.value.trim() && this.view.filter ? of(pass) : "";
    if (filterText !== this.shown.filter) this.filterCount.textContent = this.shown.filter = filterText;
    const hlText = this.view.rules.length ? of(hit) : "";
    if (hlText !== this.shown.highlight) {
      this.highlightCount.textContent = this.shown.highlight = hlText;
    }
  }

  /** Called once a second by the board: rates, reconnect countdowns, relative times. */
  tick() {
    this.meter.tick((n) => t("rate", { n: formatRate(n) }));
    for (const member of this.members) member.tick();
    this.view.refreshTimes();
  }

  /**
   * The query options of kind `kind` (default: the first source's): its named inputs (a resume
   * asks for more backlog). A field with data-requires="NAME" is left out while NAME is empty.
   */
  options(resuming, kind = this.kind) {
    const options = {};
    const fields = optionFields(this.el, kind);
    for (const input of fields) options[input.name] = fieldValue(input);
    for (const input of fields) {
      const needs = input.dataset.requires;
      if (needs && !options[needs]) options[input.name] = "";
    }
    if (resuming && kindByUrl(kind)?.resumable && "lines" in options) {
      options.lines = Math.max(Number(options.lines) || 0, RESUME_BACKLOG);
    }
    return options;
  }

  /**
   * Act on a spec that came from a link (a shared URL, a reload): a plain tail starts, but a
   * search of the log history and desktop notifications wait for a click: the pane is shown
   * ready, with a hint and a button.
   */
  openFromLink(spec) {
    if (spec.alert) {
      this.alerts.enabled = false;
      this.alerts.button.setAttribute("aria-pressed", "false");
      this.offer("alerts", t("link_alerts"), t("link_alerts_button"),
        () => this.alerts.setEnabled(true, true));
    }
    if (!spec.run) return;
    if (this.searching()) this.offer("search", t("link_search"), t("link_search_button"), () => this.start());
    else this.start();
  }

  /** Whether Start would run a search of the log history (a search pattern, not around). */
  searching() {
    return this.members.some((member) => {
      const options = this.options(false, member.kind);
      return Boolean(options.search) && !Number(options.around);
    });
  }

  /** Show a hint with a button that does what a link may not do by itself (once, on click). */
  offer(what, text, label, act) {
    this.withdraw(what);
    const hint = document.createElement("p");
    hint.className = "link-hint";
    hint.dataset.offer = what;
    hint.setAttribute("role", "status");
    const words = document.createElement("span");
    words.textContent = text;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link-hint-act";
    button.textContent = label;
    button.addEventListener("click", () => { this.withdraw(what); act(); });
    hint.append(words, " ", button);
    this.problem.before(hint);
  }

  /** Remove the hint offered for `what`, if any. */
  withdraw(what) {
    this.el.querySelector(`.link-hint[data-offer="${what}"]`)?.remove();
  }

  /** Open the stream of every source that is not streaming. */
  start() {
    if (!this.members.length) {
      this.picker.input.focus();
      return;
    }
    this.withdraw("search");
    if (!this.live) {
      this.files.reset();
      this.meter.reset((n) => t("rate", { n: formatRate(n) }));
    }
    for (const member of this.members) member.start();
    this.picker.close();
    this.board.changed();
  }

  /** Stop every stream for good (never reconnects). */
  stop() {
    for (const member of this.members) member.stop();
  }

  /** Drop the streams without waiting (pane closed, page left). */
  dispose() {
    for (const member of this.members) member.dispose();
    this.lifetime.abort();
  }

  /** The first source's stream handlers (what a one-source pane's stream calls). */
  handlers() {
    return this.members[0].handlers();
  }

  download() {
    const blob = this.view.blob();
    const stamp = new Date().toISOString().replace(/[:T]/g, "-").slice(0, 19);
    const name = (this.sourceLabel() || "tailboard").replace(/[^\w.-]+/g, "_").slice(0, 80);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${name}-${stamp}.${blob.type === "application/json" ? "json" : "log"}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
}
