// Strings for the scripts, translated by Django: the page renders them into
// <template id="tb-strings"> as <data value="key">text</data>; t() fills in {placeholders}.

const strings = new Map();
const source = document.getElementById("tb-strings");
if (source) {
  for (const item of source.content.querySelectorAll("data[value]")) {
    strings.set(item.value, item.textContent);
  }
}

/** The page language (for numbers and dates). */
export const LANG = document.documentElement.lang || "en";

const numbers = new Intl.NumberFormat(LANG);

/** Format a count for people: 12,345. */
export function formatCount(n) {
  return numbers.format(n);
}

/** Format a rate compactly: 950, 12k, 1.2M. */
export function formatRate(n) {
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/** Translate `key`, replacing {name} with params.name; falls back to the key itself. */
export function t(key, params = {}) {
  const text = strings.has(key) ? strings.get(key) : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * The text of a status or notice in the page's language: the server's message code
 * (`message_code`, `message_params`) when the page has a translation for it, else its English
 * `message`.
 */
export function localized(message) {
  const key = `msg_${message.message_code}`;
  if (message.message_code && strings.has(key)) {
    const params = message.message_params && typeof message.message_params === "object"
      ? message.message_params : {};
    return t(key, params);
  }
  return String(message.message ?? "");
}

/** Format a byte count for people: 950 B, 12.3 KB, 4.5 MB, 1.20 GB (decimal units). */
export function formatBytes(n) {
  const value = Math.max(0, Number(n) || 0);
  if (value < 1000) return `${Math.round(value)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let scaled = value / 1000;
  let unit = 0;
  while (scaled >= 1000 && unit < units.length - 1) {
    scaled /= 1000;
    unit += 1;
  }
  return `${scaled.toFixed(scaled < 10 ? 2 : scaled < 100 ? 1 : 0)} ${units[unit]}`;
}
