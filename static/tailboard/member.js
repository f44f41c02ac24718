// One source of a pane: its own WebSocket (a Stream), its status row (badge with the amber
// warning state, message, reconnect countdown, Retry), its show/hide toggle and its tag colour.
// A pane that follows several sources has one Member per source; their lines share its LogView.
import { formatCount, t } from "./i18n.js";
import { kindByUrl, kindOfSource } from "./kinds.js";
import { unseenLines } from "./logview.js";
import { Stream, streamUrl } from "./stream.js";

const RESUME_BACKLOG = 1000;
/** Backlog lines a reconnect holds at most while it waits for `running`. */
const RESUME_HELD = 5000;
const SEEN_IDS = 5000;

/** A pane follows at most this many sources (each has its own stream). */
export const MAX_SOURCES = 8;

/** Number of source colours in style.css (.sc-0 … .sc-7). */
export const SOURCE_COLOURS = 8;

/** Describe a close code for people. */
export function closeReason(code) {
  const key = `close_${code}`;
  const text = t(key);
  return text === key ? t("close_other", { code }) : text;
}

/** A tag naming a source in a merged pane: <span class="src-tag sc-N">name</span>. */
export function sourceTagNode(name, colour, where = "") {
  const tag = document.createElement("span");
  tag.className = `src-tag sc-${colour}`;
  tag.textContent = name;
  if (where) tag.title = where;
  return tag;
}

export class Member {
  /** `row` is this source's status row (a .source-row element), `colour` its tag colour. */
  constructor(pane, src, row, colour) {
    this.pane = pane;
    this.src = src;
    this.row = row;
    this.colour = colour;
    this.stream = null;
    this.resume = null;
    this.wasResumed = false;
    this.seen = new Set();
    this.state = "idle";
    this.worker = "";
    this.warning = "";
    this.lastError = "";
    this.retryAt = 0;
    const $ = (selector) => row.querySelector(selector);
    this.status = $(".status");
    this.badge = $(".badge");
    this.message = $(".message");
    this.countdown = $(".countdown");
    this.retryButton = $(".retry");
    this.transport = $(".transport");
    this.toggleButton = $(".source-toggle");
    this.removeButton = $(".source-remove");
    row.dataset.src = src;
    this.retryButton.onclick = () => this.stream?.retryNow();
    this.toggleButton.onclick = () => pane.toggleSource(this);
    this.removeButton.onclick = () => pane.removeSource(this);
    this.describe();
    this.setStatus("idle", t("state_idle"));
  }

  /** The URL segment of this source's kind ("tailf", "feeds", …) and its id. */
  get kind() { return this.src.split(":")[0]; }
  get id() { return this.src.split(":")[1]; }

  /** The <option> of this source in the pane's source list (null if not shared with the user). */
  get option() {
    return [...this.pane.source.options].find((o) => o.value === this.src && !o.disabled) || null;
  }

  get name() {
    const option = this.option;
    return option ? (option.dataset.name || option.textContent.trim()) : this.src;
  }

  /** Label the row's toggle and remove buttons with the source's name and colour. */
  describe() {
    const name = this.name;
    this.toggleButton.textContent = name;
    this.toggleButton.className = `source-toggle toggle sc-${this.colour}`;
    this.toggleButton.title = t("source_toggle", { name });
    this.removeButton.setAttribute("aria-label", t("source_remove", { name }));
    this.removeButton.title = t("source_remove", { name });
    this.status.setAttribute("aria-label", t("source_status", { name }));
  }

  /** A tag for this source's rows. */
  tag() {
    return sourceTagNode(this.name, this.colour, this.option?.dataset.where || "");
  }

  get live() { return this.stream !== null; }

  setStatus(state, badge, message = "") {
    this.state = state;
    this.status.dataset.state = state;
    this.row.dataset.state = state;
    this.badge.textContent = badge;
    this.message.textContent = message;
    this.badge.title = state === "warning" ? message : "";
    if (state !== "reconnecting") {
      this.retryAt = 0;
      this.countdown.textContent = "";
      this.retryButton.hidden = true;
    }
    this.pane.syncControls();
  }

  /** Once a second: the reconnect countdown. */
  tick() {
    if (this.retryAt) {
      const left = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.countdown.textContent = t("countdown", { s: left });
    }
  }

  /** Open this source's stream with the pane's options for its kind. */
  start() {
    if (this.stream) return;
    if (!this.option || !kindOfSource(this.src)) {
      this.setStatus("error", t("state_error"), t("source_unavailable"));
      return;
    }
    const kind = this.kind;
    const id = this.id;
    this.seen.clear();
    this.warning = "";
    this.cursor = "";
    this.stream = new Stream((resuming) => streamUrl(kind, id, this.streamOptions(resuming, kind)),
      this.handlers());
    this.stream.start();
  }

  /**
   * The pane's options for this source; a reconnect of a stream whose frames carried a cursor
   * (the journal) asks to resume right after the last entry shown: nothing lost or repeated.
   */
  streamOptions(resuming, kind) {
    const options = this.pane.options(resuming, kind);
    if (resuming && this.cursor) options.after = this.cursor;
    return options;
  }

  /** Stop the stream for good (never reconnects). */
  stop() {
    if (!this.stream) return;
    this.setStatus("stopping", t("state_stopping"));
    this.stream.stop();
  }

  /** Drop the stream without waiting (source removed, pane closed, page left). */
  dispose() {
    if (this.stream) this.stream.close();
    this.stream = null;
  }

  handlers() {
    const pane = this.pane;
    const view = pane.view;
    const primary = () => pane.members[0] === this;
    return {
      connecting: ({ resuming, transport }) => {
        this.showTransport(transport);
        this.resume = resuming && kindByUrl(this.kind)?.resumable ? { batches: [], count: 0 } : null;
        this.wasResumed = resuming;
        this.warning = "";
        if (primary()) pane.search.begin(resuming);
        this.setStatus("connecting", resuming ? t("state_reconnecting") : t("state_connecting"));
      },
      status: (message) => this.onStatus(message),
      lines: (lines, file, frame) => {
        if (typeof frame?.cursor === "string" && frame.cursor) this.cursor = frame.cursor;
        if (this.state === "running" || this.state === "warning") pane.meter.add(lines.length);
        if (file) pane.files.add(file);
        const levels = Array.isArray(frame?.levels) ? frame.levels : null;
        const stream = typeof frame?.stream === "string" ? frame.stream : "";
        if (this.resume) {
          this.holdForResume({ lines, file: file || "", levels, stream,
            key: `${file || ""}\n${stream === "stderr" ? "stderr" : ""}` });
          return undefined;
        }
        return view.addLines(lines, file, this.src, levels, stream);
      },
      matches: (message) => pane.search.matches(message),
      progress: (message) => pane.search.progress(message),
      notice: (text) => { view.addNotice(`— ${this.prefix()}${text}`, "notice"); },
      dropped: (count) => {
        view.addNotice(`${this.prefix()}${t("dropped", { n: formatCount(count) })}`, "dropped");
      },
      entries: (entries) => {
        const fresh = entries.filter((entry) => {
          const key = entry.id || `${entry.link}|${entry.title}`;
          if (this.seen.has(key) && !entry.updated) return false;
          this.seen.add(key);
          return true;
        });
        if (this.seen.size > SEEN_IDS) this.seen = new Set([...this.seen].slice(-SEEN_IDS / 2));
        pane.meter.add(fresh.length);
        if (fresh.length) view.addEntries(fresh, this.src);
      },
      retrying: ({ attempt, seconds, code }) => {
        this.setStatus("reconnecting", t("state_reconnecting"),
          t("retrying", { reason: this.lastError || closeReason(code), n: attempt }));
        this.retryAt = Date.now() + seconds * 1000;
        this.countdown.textContent = t("countdown", { s: Math.ceil(seconds) });
        this.retryButton.hidden = false;
      },
      fallback: () => { view.addNotice(`— ${this.prefix()}${t("transport_fallback")}`, "info"); },
      ended: (detail) => this.onEnded(detail),
    };
  }

  /** Say on the row which transport the stream uses ("WebSocket" or "long polling"). */
  showTransport(transport) {
    if (!this.transport) return;
    this.transport.hidden = false;
    this.transport.dataset.transport = transport;
    this.transport.textContent = t(transport === "polling" ? "transport_polling" : "transport_websocket");
  }

  /** In a merged pane, notices name their source ("alpha: "). */
  prefix() {
    return this.pane.members.length > 1 ? `${this.name}: ` : "";
  }

  onStatus(message) {
    const text = String(message.message || "");
    const view = this.pane.view;
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
        view.addNotice(`— ${this.prefix()}${t("state_stopped")}: ${text}`, "info");
        break;
      case "error":
        this.lastError = text;
        this.setStatus("error", t("state_error"), text);
        view.addNotice(`— ${this.prefix()}${t("state_error")}: ${text}`, "error");
        break;
      default:
        this.setStatus(String(message.state), String(message.state), text);
    }
  }

  /** After a reconnect: show only backlog lines not already held, and say so. */
  finishResume() {
    const view = this.pane.view;
    if (!this.resume) {
      if (this.wasResumed) view.addNotice(`— ${this.prefix()}${t("reconnected")}`, "info");
      this.wasResumed = false;
      return;
    }
    const { batches, count } = this.resume;
    this.resume = null;
    // Each file (a container of a container source) and output stream is matched against its
    // own held lines: the backlog of several files, or of a container's stdout and stderr,
    // does not come in the order their lines were shown.
    const skip = new Map();
    let gap = false;
    const anyHeld = view.tail(1, this.src).length > 0;
    for (const key of new Set(batches.map((batch) => batch.key))) {
      const mine = batches.filter((batch) => batch.key === key);
      const fresh = mine.flatMap((batch) => batch.lines);
      const [file, stream] = key.split("\n");
      const found = unseenLines(anyHeld ? view.tail(RESUME_BACKLOG, this.src, file, stream) : [],
        fresh);
      gap ||= found.gap;
      skip.set(key, fresh.length - found.lines.length);
    }
    if (!anyHeld) {
      const wanted = Number(this.pane.options(false, this.kind).lines) || 0;
      let extra = Math.max(0, count - (wanted || count));
      for (const batch of batches) {
        const take = Math.min(extra, batch.lines.length);
        skip.set(batch.key, skip.get(batch.key) + take);
        extra -= take;
      }
    }
    view.addNotice(`— ${this.prefix()}${gap ? t("reconnected_gap") : t("reconnected")}`,
      gap ? "dropped" : "info");
    for (const batch of batches) {
      const left = skip.get(batch.key);
      skip.set(batch.key, Math.max(0, left - batch.lines.length));
      if (left >= batch.lines.length) continue;
      view.addLines(batch.lines.slice(left), batch.file || undefined, this.src,
        batch.levels ? batch.levels.slice(left) : null, batch.stream);
    }
  }

  /** Keep a frame of a resumed stream's backlog (at most RESUME_HELD lines, the newest). */
  holdForResume(batch) {
    const resume = this.resume;
    resume.batches.push(batch);
    resume.count += batch.lines.length;
    while (resume.count - resume.batches[0].lines.length >= RESUME_HELD) {
      resume.count -= resume.batches.shift().lines.length;
    }
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
    this.pane.board.changed();
  }
}
