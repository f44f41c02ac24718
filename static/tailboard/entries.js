// Feed entries as DOM, built with textContent only: the feed is not trusted.
import { LANG, t } from "./i18n.js";

const when = new Intl.DateTimeFormat(LANG, { dateStyle: "medium", timeStyle: "short" });

/** Return the link when it is an absolute http(s) URL, else "". */
export function safeLink(link) {
  if (typeof link !== "string") return "";
  try {
    const url = new URL(link);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  } catch (err) {
    return "";
  }
}

/** Format an ISO time in the viewer's own time zone; "" when missing or unreadable. */
export function localTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : when.format(date);
}

/** The text a filter or highlight looks at for an entry. */
export function entryText(entry) {
  return [entry.title, entry.summary, entry.source].filter(Boolean).join(" ");
}

/** Build the node of one feed entry; `decorate(element, text)` fills a text element (highlights). */
export function entryNode(entry, decorate) {
  const item = document.createElement("article");
  item.className = "entry";
  const head = document.createElement("div");
  head.className = "entry-head";
  const link = safeLink(entry.link);
  const title = document.createElement(link ? "a" : "span");
  title.className = "entry-title";
  decorate(title, entry.title || t("untitled"));
  if (link) {
    title.href = link;
    title.rel = "noopener noreferrer";
    title.target = "_blank";
  }
  head.appendChild(title);
  if (entry.updated) {
    const badge = document.createElement("span");
    badge.className = "entry-updated";
    badge.textContent = t("updated");
    head.appendChild(badge);
  }
  item.appendChild(head);
  const meta = document.createElement("div");
  meta.className = "entry-meta";
  const stamp = localTime(entry.published);
  if (stamp) {
    const time = document.createElement("time");
    time.dateTime = entry.published;
    time.textContent = stamp;
    meta.appendChild(time);
  }
  if (entry.source) {
    const source = document.createElement("span");
    source.className = "entry-source";
    source.textContent = entry.source;
    meta.appendChild(source);
  }
  item.appendChild(meta);
  if (entry.summary) {
    const summary = document.createElement("p");
    summary.className = "entry-summary";
    decorate(summary, String(entry.summary));
    item.appendChild(summary);
  }
  return item;
}
