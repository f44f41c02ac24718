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

/** A WebSocket that neither opens nor carries a message this soon is taken as blocked. */
export const WEBSOCKET_SILENT_MS = 6000;
/** After falling back to long polling, reconnects try the WebSocket again this much later. */
export const WEBSOCKET_RETRY_MS = 5 * 60 * 1000;
/** A long poll that fails this many times in a row (network, 5xx) ends the connection (1006). */
const POLL_FAILURES = 5;

/** The long-poll start URL of a stream's WebSocket URL: /streams/<kind>/<id>/?options. */
export function pollUrl(socketUrl) {
  const url = new URL(socketUrl.replace(/^ws/, "http"));
  return url.pathname.replace(/^\/ws\//, "/streams/") + url.search;
}

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

/** A poll the server answered with an error (its message says why). */
class PollFailed extends Error {}

/**
 * The stream protocol over plain HTTP (docs/protocol.md, "Streams over plain HTTP"), behind the part of
 * the WebSocket interface `Stream` uses: readyState, send(), close(), and open, message and
 * close events. `POST url` starts the stream; each `GET /streams/poll/<token>/?after=N` brings
 * the messages after N (its `after` confirms what arrived, which is also the server's flow
 * control); `stop` is POSTed. Acks are not sent: the next poll confirms.
 */
export class PollSocket extends EventTarget {
  constructor(url) {
    super();
    this.readyState = WebSocket.CONNECTING;
    this.token = null;
    this.after = 0;
    this.aborter = new AbortController();
    this.begin(url);
  }

  async begin(url) {
    let response;
    try {
      response = await fetch(url, { method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRFToken": csrfToken() }, signal: this.aborter.signal });
    } catch (err) {
      this.end(1006);
      return;
    }
    const body = await response.json().catch(() => null);
    if (response.status !== 201 || !body?.stream) {
      const code = Number(body?.code) || (response.status >= 500 ? 1011 : 4400);
      this.emit({ type: "status", state: "error", code,
        message: String(body?.message || `HTTP ${response.status}`) });
      this.end(code);
      return;
    }
    if (this.readyState !== WebSocket.CONNECTING) return;
    this.token = body.stream;
    this.readyState = WebSocket.OPEN;
    this.dispatchEvent(new Event("open"));
    this.run();
  }

  async run() {
    let failures = 0;
    while (this.readyState === WebSocket.OPEN) {
      let body;
      try {
        const response = await fetch(`/streams/poll/${encodeURIComponent(this.token)}/?after=${this.after}`,
          { credentials: "same-origin", cache: "no-store", signal: this.aborter.signal });
        if (response.status >= 400 && response.status < 500) {
          // Logged out: a refusal (log in again). A stream the server no longer knows (its
          // state expired while the page slept): a new one is worth trying.
          this.end(response.status === 401 ? 4401 : 1006);
          return;
        }
        if (!response.ok) {
          // The server's reason (a 503 says "lost contact with Redis: ...") or the status.
          const failed = await response.json().catch(() => null);
          throw new PollFailed(String(failed?.message || `HTTP ${response.status}`));
        }
        body = await response.json();
        failures = 0;
      } catch (err) {
        if (this.readyState !== WebSocket.OPEN) return;
        failures += 1;
        if (failures >= POLL_FAILURES) {
          // Say why before the reconnect, as the WebSocket's last status does.
          if (err instanceof PollFailed) {
            this.emit({ type: "status", state: "error", code: 1011, retry: true,
              message: err.message });
          }
          this.end(1006);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * failures));
        continue;
      }
      if (this.readyState !== WebSocket.OPEN) return;
      for (const message of body.messages || []) this.emit(message);
      this.after = Number(body.next) || this.after;
      if (body.closed) { this.end(Number(body.closed.code) || 1000); return; }
    }
  }

  emit(message) {
    this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(message) }));
  }

  /** Send a client message: `stop` is POSTed; acks are left to the next poll's `after`. */
  send(text) {
    let message;
    try { message = JSON.parse(text); } catch (err) { return; }
    if (message?.action !== "stop" || !this.token) return;
    fetch(`/streams/poll/${encodeURIComponent(this.token)}/`, { method: "POST",
      credentials: "same-origin", cache: "no-store", body: text,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() } })
      .catch(() => {});
  }

  /** Stop polling (the server ends the stream when its lease lapses). */
  close() {
    this.end(1000);
  }

  end(code) {
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSED;
    this.aborter.abort();
    this.dispatchEvent(new CloseEvent("close", { code }));
  }
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
    this.transport = "websocket";
    this.websocketRetryAt = 0; // while in the future, connections use long polling
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
    const polling = Date.now() < this.websocketRetryAt;
    this.transport = polling ? "polling" : "websocket";
    this.handlers.connecting?.({ resuming, transport: this.transport });
    const url = this.urlFor(resuming);
    const socket = polling ? new PollSocket(pollUrl(url)) : new WebSocket(url);
    this.socket = socket;
    // A WebSocket that a proxy blocks (fails to open) or that carries nothing: fall back to
    // long polling at once, and try the WebSocket again on a reconnect some minutes later.
    let heard = false;
    const silence = polling ? null : setTimeout(() => {
      if (!heard) this.fallBack(socket, resuming);
    }, WEBSOCKET_SILENT_MS);
    socket.addEventListener("message", () => { heard = true; clearTimeout(silence); });
    socket.addEventListener("close", () => {
      clearTimeout(silence);
      if (!polling && !heard && !this.stopping) this.fallBack(socket, resuming);
    });
    const ack = (seq) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "ack", seq }));
    };
    // Credit-based flow control: acknowledge each data frame once it has been rendered, so the
    // server never has more than a few frames in flight to this page (seq -1 opts in).
    socket.addEventListener("open", () => { this.everOpened = true; ack(-1); });
    socket.addEventListener("message", (event) => this.dispatch(event.data, ack));
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  fallBack(socket, resuming) {
    if (socket !== this.socket || this.ended || this.stopping) return;
    this.socket = null;
    socket.close();
    this.websocketRetryAt = Date.now() + WEBSOCKET_RETRY_MS;
    this.handlers.fallback?.();
    this.connect(resuming);
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
        this.handlers.status?.({ ...message, message: localized(message),
          ...(message.warning ? { warning: localized({ message: message.warning,
            message_code: message.warning_code, message_params: message.warning_params }) } : {}) });
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
