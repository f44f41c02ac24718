// The browser side of the stream protocol: one socket per stream, messages dispatched by type.

const CLOSE_REASONS = {
  1000: "closed",
  1006: "connection lost",
  1011: "server error",
  4500: "server error",
  4400: "bad option",
  4401: "not logged in",
  4403: "not allowed",
  4404: "no such source",
  4429: "too many streams",
};

/** Build the WebSocket URL of a stream: kind is "tailf" or "feeds". */
export function streamUrl(kind, id, options) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(options)) {
    if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  return `${scheme}//${window.location.host}/ws/${kind}/${encodeURIComponent(id)}/${qs ? "?" + qs : ""}`;
}

/** Describe a close code for people. */
export function closeReason(code) {
  return CLOSE_REASONS[code] || `closed (${code})`;
}

/** Open a stream and call handlers.status/lines/notice/dropped/entries/closed; returns a controller. */
export function openStream(url, handlers) {
  const socket = new WebSocket(url);
  let stopping = false;
  const ack = (seq) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "ack", seq }));
  };
  // Credit-based flow control: acknowledge each data frame once it has been rendered, so the
  // server never has more than a few frames in flight to this page (seq -1 opts in).
  socket.addEventListener("open", () => ack(-1));
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (err) {
      handlers.notice?.("the server sent a frame that is not JSON");
      return;
    }
    switch (message.type) {
      case "status": handlers.status?.(message); break;
      case "lines":
        handlers.lines?.(message.lines);
        if (Number.isInteger(message.seq)) {
          if (document.hidden) ack(message.seq);
          else requestAnimationFrame(() => ack(message.seq));
        }
        break;
      case "notice": handlers.notice?.(message.message); break;
      case "dropped": handlers.dropped?.(message.count); break;
      case "entries": handlers.entries?.(message.entries); break;
      default: handlers.notice?.(`unknown message type ${String(message.type)}`);
    }
  });
  socket.addEventListener("close", (event) => handlers.closed?.(event.code, stopping));
  socket.addEventListener("error", () => handlers.error?.());
  return {
    stop() {
      stopping = true;
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "stop" }));
      else socket.close();
    },
    close() { stopping = true; socket.close(); },
    get open() { return socket.readyState === WebSocket.OPEN; },
  };
}
