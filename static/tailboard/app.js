// The dashboard: pick a source, Start, render lines/entries as text, Stop.
import { closeReason, openStream, streamUrl } from "./stream.js";

const MAX_ROWS = 10000;

const form = document.getElementById("controls");
const sourceSelect = document.getElementById("source");
const stopButton = document.getElementById("stop");
const startButton = document.getElementById("start");
const clearButton = document.getElementById("clear");
const statusLine = document.getElementById("status");
const output = document.getElementById("output");

let stream = null;

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function atBottom() {
  return output.scrollHeight - output.scrollTop - output.clientHeight < 40;
}

function append(nodes) {
  const follow = atBottom();
  const fragment = document.createDocumentFragment();
  for (const node of nodes) fragment.appendChild(node);
  output.appendChild(fragment);
  let excess = output.childElementCount - MAX_ROWS;
  while (excess-- > 0) output.firstElementChild.remove();
  if (follow) output.scrollTop = output.scrollHeight;
}

function row(className, text) {
  const div = document.createElement("div");
  div.className = className;
  div.textContent = text;
  return div;
}

function entryNode(entry) {
  const div = document.createElement("div");
  div.className = "entry";
  const title = document.createElement(entry.link ? "a" : "span");
  title.className = "entry-title";
  title.textContent = entry.title || "(untitled)";
  if (entry.link && /^https?:\/\//i.test(entry.link)) {
    title.href = entry.link;
    title.rel = "noopener noreferrer";
    title.target = "_blank";
  }
  div.appendChild(title);
  const meta = document.createElement("span");
  meta.className = "entry-meta";
  const when = entry.published ? new Date(entry.published).toLocaleString() : "";
  meta.textContent = [entry.source, when, entry.updated ? "updated" : ""].filter(Boolean).join(" · ");
  div.appendChild(meta);
  if (entry.summary) div.appendChild(row("entry-summary", entry.summary));
  return div;
}

function selectedKind() {
  return sourceSelect.value.split(":")[0];
}

function syncOptionFields() {
  const kind = selectedKind();
  for (const el of document.querySelectorAll(".opt-log")) el.hidden = kind !== "tailf";
  for (const el of document.querySelectorAll(".opt-feed")) el.hidden = kind !== "feeds";
}

function running(on) {
  stopButton.disabled = !on;
  startButton.disabled = on;
  sourceSelect.disabled = on;
}

function start() {
  if (stream || !sourceSelect.value) return;
  const [kind, id] = sourceSelect.value.split(":");
  const options = kind === "tailf"
    ? { lines: form.lines.value, grep: form.grep.value }
    : { entries: form.entries.value };
  setStatus("connecting", "Connecting…");
  running(true);
  stream = openStream(streamUrl(kind, id, options), {
    status(message) {
      const where = message.worker ? ` on ${message.worker}` : "";
      const text = message.state === "running" ? `Running${where}: ${message.message}`
        : `${message.state[0].toUpperCase()}${message.state.slice(1)}: ${message.message}`;
      setStatus(message.state, text);
      if (message.task_id) statusLine.dataset.taskId = message.task_id;
      if (message.state === "error" || message.state === "stopped") {
        append([row(`notice ${message.state}`, text)]);
      }
    },
    lines(lines) { append(lines.map((line) => row("line", line))); },
    notice(text) { append([row("notice", `— ${text}`)]); },
    dropped(count) { append([row("notice dropped", `— ${count} lines dropped: the viewer fell behind`)]); },
    entries(entries) { append(entries.map(entryNode)); },
    closed(code, stopping) {
      stream = null;
      running(false);
      if (statusLine.dataset.state !== "error" && statusLine.dataset.state !== "stopped") {
        setStatus(code === 1000 || stopping ? "stopped" : "error",
          code === 1000 || stopping ? "Stopped" : `Disconnected: ${closeReason(code)}`);
      }
    },
  });
}

form.addEventListener("submit", (event) => { event.preventDefault(); start(); });
stopButton.addEventListener("click", () => { if (stream) { setStatus("stopping", "Stopping…"); stream.stop(); } });
clearButton.addEventListener("click", () => output.replaceChildren());
sourceSelect.addEventListener("change", syncOptionFields);
window.addEventListener("pagehide", () => stream?.close());
syncOptionFields();
