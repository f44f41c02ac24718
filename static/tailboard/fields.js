// Structured log lines: JSON objects and logfmt (key=value ...) parsed into fields, the level a
// `level`/`lvl`/`severity` field names, and the filter box's `field=value` terms (the rest of the
// box goes to matchers.js's compileFilter). Pure text, no DOM.
import { compileFilter, leadingTimestamp } from "./matchers.js";

/** At most this many fields are parsed from one line; the rest stays in the text. */
export const MAX_FIELDS = 64;
const MAX_PARSE_CHARS = 16384;
const KEY = /^[A-Za-z_@][\w.@/-]*$/;
const LEVEL_KEYS = ["level", "lvl", "severity", "loglevel", "log.level"];
const MESSAGE_KEYS = ["msg", "message"];
const LEVELS = {
  fatal: "error", panic: "error", crit: "error", critical: "error", emerg: "error",
  emergency: "error", alert: "error", severe: "error", error: "error", err: "error",
  warn: "warn", warning: "warn", info: "info", information: "info", informational: "info",
  notice: "info", debug: "debug", trace: "debug", verbose: "debug",
};

function scalar(value) {
  if (value === null) return "null";
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  }
  return String(value);
}

function parseJson(text) {
  if (text[0] !== "{" || text[text.length - 1] !== "}") return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const fields = [];
  for (const [key, item] of Object.entries(value)) {
    if (fields.length >= MAX_FIELDS) break;
    fields.push([key, scalar(item)]);
  }
  return fields.length ? fields : null;
}

/** Split logfmt text into [key, value] pairs; null unless every token is a pair (2 or more). */
export function parseLogfmt(text) {
  const fields = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === " " || text[i] === "\t")) i += 1;
    if (i >= n) break;
    const eq = text.indexOf("=", i);
    if (eq <= i) return null;
    const key = text.slice(i, eq);
    if (!KEY.test(key)) return null;
    i = eq + 1;
    let value = "";
    if (text[i] === '"') {
      i += 1;
      let closed = false;
      while (i < n) {
        const char = text[i];
        if (char === "\\" && i + 1 < n) {
          const next = text[i + 1];
          value += next === "n" ? "\n" : next === "t" ? "\t" : next;
          i += 2;
        } else if (char === '"') {
          closed = true;
          i += 1;
          break;
        } else {
          value += char;
          i += 1;
        }
      }
      if (!closed || (i < n && text[i] !== " " && text[i] !== "\t")) return null;
    } else {
      const start = i;
      while (i < n && text[i] !== " " && text[i] !== "\t") i += 1;
      value = text.slice(start, i);
      if (value.includes('"')) return null;
    }
    fields.push([key, value]);
    if (fields.length > MAX_FIELDS) return null;
  }
  return fields.length >= 2 ? fields : null;
}

/**
 * Parse a structured line: {format: "json"|"logfmt", stamp, fields: [[key, value]...]} or null.
 * A leading timestamp (as matchers.js finds it) may precede the structure; it is kept as `stamp`.
 */
export function parseFields(line) {
  const text = String(line ?? "");
  if (text.length > MAX_PARSE_CHARS || (!text.includes("=") && !text.includes("{"))) return null;
  const stamp = leadingTimestamp(text);
  const body = text.slice(stamp.length).trim();
  if (!body) return null;
  const json = parseJson(body);
  if (json) return { format: "json", stamp, fields: json };
  const pairs = body.includes("=") ? parseLogfmt(body) : null;
  return pairs ? { format: "logfmt", stamp, fields: pairs } : null;
}

function lookup(fields, names) {
  for (const name of names) {
    const found = fields.find(([key]) => key.toLowerCase() === name);
    if (found) return found[1];
  }
  return null;
}

/** The level ("error", "warn", "info", "debug" or "") a parsed line's level field names. */
export function fieldLevel(parsed) {
  if (!parsed) return "";
  const value = lookup(parsed.fields, LEVEL_KEYS);
  if (value === null) return "";
  const word = String(value).trim().toLowerCase();
  if (Object.hasOwn(LEVELS, word)) return LEVELS[word];  // own keys: "constructor" is no level
  const number = Number(word);
  if (word !== "" && Number.isFinite(number)) {
    // pino/bunyan numbers: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    if (number >= 50) return "error";
    if (number >= 40) return "warn";
    if (number >= 30) return "info";
    return "debug";
  }
  return "";
}

/** The message field (msg/message) of a parsed line, or null. */
export function fieldMessage(parsed) {
  return parsed ? lookup(parsed.fields, MESSAGE_KEYS) : null;
}

const FIELD_TERM = /^([A-Za-z_@][\w.@/-]*)(!?=)(?:"((?:[^"\\]|\\.)*)"|(\S*))$/;

/** Split the filter text into field terms [{key, negate, value}] and the remaining text. */
export function splitFieldTerms(text) {
  const source = String(text ?? "").trim();
  if (/^\/.*\/[dgimsuy]*$/s.test(source)) return { terms: [], rest: source };
  const terms = [];
  const rest = [];
  const tokens = source.match(/(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g) || [];
  for (const token of tokens) {
    const match = FIELD_TERM.exec(token);
    if (match) {
      const value = match[3] !== undefined ? match[3].replace(/\\(.)/g, "$1") : match[4];
      terms.push({ key: match[1], negate: match[2] === "!=", value });
    } else {
      rest.push(token);
    }
  }
  return { terms, rest: rest.join(" ") };
}

function termMatches(term, parsed, line) {
  const caseless = term.value === term.value.toLowerCase();
  const want = caseless ? term.value.toLowerCase() : term.value;
  if (parsed) {
    const key = term.key.toLowerCase();
    const found = parsed.fields.filter(([name]) => name.toLowerCase() === key);
    const hit = found.some(([, value]) => (caseless ? value.toLowerCase() : value) === want);
    return term.negate ? !hit : hit;
  }
  // A line that is not structured: the term is looked for as text ("key=value").
  const needle = `${term.key}=${term.value}`;
  const hay = caseless ? line.toLowerCase() : line;
  const hit = hay.includes(caseless ? needle.toLowerCase() : needle);
  return term.negate ? !hit : hit;
}

/**
 * Compile the filter box: `field=value` / `field!=value` terms (a value may be "quoted") match
 * a structured line's fields (keys case-insensitive; values exact, case-insensitive unless they
 * have a capital); whatever else the box holds is one matchers.js filter. All must match.
 * Returns null (empty), {error}, or {test(text) -> bool, terms}.
 */
export function compileRowFilter(text) {
  const { terms, rest } = splitFieldTerms(text);
  if (!terms.length) return compileFilter(String(text ?? ""));
  const plain = rest ? compileFilter(rest) : null;
  if (plain && plain.error) return { error: plain.error };
  return {
    terms,
    test(line) {
      const value = String(line);
      if (plain && !plain.test(value)) return false;
      const parsed = parseFields(value);
      return terms.every((term) => termMatches(term, parsed, value));
    },
  };
}
