// The browser side of the stream protocol: the one place that builds stream URLs, switches on
// message `type`, acknowledges data frames (flow control) and reconnects with backoff.
import { localized } from "./i18n.js";

/** Close codes after which the server refused the stream: reconnecting would not help. */
export const REFUSALS = new Set([4400, 4401, 4403, 4404, 4429]);

/** Close codes after which a new connection is worth trying (dropped socket, lost worker). */
export const RETRYABLE = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014, 4408, 4500, 4503]);

export const BACKOFF_MIN_SECONDS = 1;
export const BACKOFF_MAX_SECONDS = 30;

/** Build the WebSocket URL of a stream: kind is a registered kind's url ("tailf", "feeds"). */
export function streamUrl(kind, id, options) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(options)) {
    if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  return `${scheme}//${window.location.host}/ws/${kind}/${encodeURIComponent(id)}/${qs ? "?" + qs : ""}`;
}

/** Seconds to wait before reconnect attempt `attempt` (0-based): exponential, jittered, 1–30 s. */
export function backoffSeconds(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_SECONDS, BACKOFF_MIN_SECONDS * 2 ** Math.max(0, attempt));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  return Math.min(BACKOFF_MAX_SECONDS, Math.max(BACKOFF_MIN_SECONDS, jittered));
}

/**
 * One stream that survives dropped sockets and lost workers.
 *
 * `urlFor(resuming)` returns the URL to open (resuming is true for reconnects). Handlers:
 * status(message), lines(lines, file, frame) (may return a Promise: the frame is acknowledged
 * when it settles, so the server never runs ahead of rendering; `frame` is the whole message,
 * with its per-line `levels` and its `cursor`), notice(text), dropped(count),
 * entries(entries), retrying({attempt, seconds, code}), connecting({resuming}),
 * ended({code, stopped, refused}).
 */
export class Stream {
  constructor(urlFor, handlers) {
    this.urlFor = urlFor;
    this.handlers = handlers;
    this.socket = null;
    this.timer = null;
    this.attempt = 0;
    this.stopping = false;
    this.ended = false;
    this.everOpened = false;
  }

  /** Open the first connection. */
  start() {
    this.connect(false);
  }

  /** End the stream for good: ask the server to stop; never reconnect. */
  stop() {
    this.stopping = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ action: "stop" }));
      // A server that does not answer the Stop within a few seconds is not waited for.
      setTimeout(() => { if (this.socket === socket) socket.close(); }, 5000);
    } else if (socket && socket.readyState === WebSocket.CONNECTING) {
      socket.close();
    } else {
      this.finish({ code: 1000, stopped: true, refused: false });
    }
  }

  /** Drop the connection without a Stop message (pane closed, page left); never reconnect. */
  close() {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.ended = true;
  }

  /** Cut the wait of a pending reconnect short. */
  retryNow() {
    if (this.timer === null || this.stopping) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect(true);
  }

  connect(resuming) {
    this.timer = null;
    this.handlers.connecting?.({ resuming });
    const socket = new WebSocket(this.urlFor(resuming));
    this.socket = socket;
    const ack = (seq) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "ack", seq }));
    };
    // Credit-based flow control: acknowledge each data frame once it has been rendered, so the
    // server never has more than a few frames in flight to this page (seq -1 opts in).
    socket.addEventListener("open", () => { this.everOpened = true; ack(-1); });
    socket.addEventListener("message", (event) => this.dispatch(event.data, ack));
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  dispatch(data, ack) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      this.handlers.notice?.("the server sent a frame that is not JSON");
      return;
    }
    let rendered;
    switch (message.type) {
      case "status":
        if (message.state === "running") this.attempt = 0;
        this.handlers.status?.({ ...message, message: localized(message) });
        break;
      case "lines": rendered = this.handlers.lines?.(message.lines || [], message.file, message); break;
      case "matches": rendered = this.handlers.matches?.(message); break;
      case "progress": this.handlers.progress?.(message); break;
      case "notice": this.handlers.notice?.(localized(message)); break;
      case "dropped": this.handlers.dropped?.(Number(message.count) || 0); break;
      case "entries": this.handlers.entries?.(message.entries || []); break;
      default: this.handlers.notice?.(`unknown message type ${String(message.type)}`);
    }
    // Data frames carry a seq: acknowledge each once it has been rendered (flow control).
    if (Number.isInteger(message.seq)) {
      const seq = message.seq;
      if (rendered && typeof rendered.then === "function") rendered.then(() => ack(seq));
      else if (document.hidden) ack(seq);
      else requestAnimationFrame(() => ack(seq));
    }
  }

  closed(socket, code) {
    if (socket !== this.socket || this.ended) return;
    this.socket = null;
    if (this.stopping) {
      this.finish({ code, stopped: true, refused: false });
    } else if (RETRYABLE.has(code)) {
      const seconds = backoffSeconds(this.attempt);
      this.attempt += 1;
      this.handlers.retrying?.({ attempt: this.attempt, seconds, code });
      this.timer = setTimeout(() => this.connect(true), seconds * 1000);
    } else {
      this.finish({ code, stopped: false, refused: REFUSALS.has(code) });
    }
  }

  finish(detail) {
    if (this.ended) return;
    this.ended = true;
    this.handlers.ended?.(detail);
  }
}
