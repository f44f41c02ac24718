// Pure text matching for panes: the filter box, highlight rules and log levels. No DOM here.

const REGEX_LITERAL = /^\/(.*)\/([dgimsuy]*)$/s;

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Compile one term: "/re/flags" is a regular expression, anything else a substring that is
 * case-insensitive unless it has a capital letter ("smart case"). Returns {regex} or {error}.
 */
export function compileTerm(term) {
  const literal = REGEX_LITERAL.exec(term);
  if (literal && literal[1] !== "") {
    try {
      const flags = literal[2].replace(/[gy]/g, "");
      return { regex: new RegExp(literal[1], flags) };
    } catch (err) {
      return { error: err.message };
    }
  }
  const caseless = term === term.toLowerCase();
  return { regex: new RegExp(escapeRegExp(term), caseless ? "i" : "") };
}

/** Return {test(text) -> bool} for the filter box, null when it is empty, or {error}. */
export function compileFilter(text) {
  const term = text.trim();
  if (!term) return null;
  const compiled = compileTerm(term);
  if (compiled.error) return { error: compiled.error };
  const regex = compiled.regex;
  return { test: (line) => regex.test(line) };
}

/** Split highlight rules on commas, keeping commas inside a /regex/ literal. */
export function splitRules(text) {
  const rules = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[\s,]/.test(text[i])) i += 1;
    if (i >= text.length) break;
    let end;
    if (text[i] === "/") {
      const close = /\/[dgimsuy]*\s*(,|$)/g;
      close.lastIndex = i + 1;
      let found = close.exec(text);
      while (found && text[found.index - 1] === "\\") found = close.exec(text);
      end = found ? found.index + found[0].length - found[1].length : text.length;
    } else {
      end = text.indexOf(",", i);
      if (end === -1) end = text.length;
    }
    const rule = text.slice(i, end).trim();
    if (rule) rules.push(rule);
    i = end + 1;
  }
  return rules;
}

/** Compile highlight rules: returns {rules: [{regex, colour}], errors: [text]}. */
export function compileHighlights(text, colours = 6) {
  const rules = [];
  const errors = [];
  for (const term of splitRules(text)) {
    const compiled = compileTerm(term);
    if (compiled.error) errors.push(`${term}: ${compiled.error}`);
    else rules.push({ regex: new RegExp(compiled.regex.source, compiled.regex.flags + "g"), colour: rules.length % colours });
  }
  return { rules, errors };
}

const MAX_MARKS = 64;

/**
 * Split a line into [text, colour|null] segments for the highlight rules; an earlier rule wins
 * where matches overlap. Returns null when nothing matches (the common, cheap case).
 */
export function highlightSegments(line, rules) {
  let marks = null;
  for (const rule of rules) {
    const regex = rule.regex;
    regex.lastIndex = 0;
    let match;
    let count = 0;
    while ((match = regex.exec(line)) !== null && count < MAX_MARKS) {
      if (match[0] === "") { regex.lastIndex += 1; continue; }
      const start = match.index;
      const end = start + match[0].length;
      marks ??= [];
      if (!marks.some((m) => start < m.end && end > m.start)) marks.push({ start, end, colour: rule.colour });
      count += 1;
    }
  }
  if (!marks) return null;
  marks.sort((a, b) => a.start - b.start);
  const segments = [];
  let at = 0;
  for (const mark of marks) {
    if (mark.start > at) segments.push([line.slice(at, mark.start), null]);
    segments.push([line.slice(mark.start, mark.end), mark.colour]);
    at = mark.end;
  }
  if (at < line.length) segments.push([line.slice(at), null]);
  return segments;
}

const LEVEL_WORD = /\b(FATAL|PANIC|CRIT(?:ICAL)?|EMERG|ALERT|SEVERE|ERROR|ERR|WARN(?:ING)?|INFO|NOTICE|DEBUG|TRACE)\b/;
const LEVEL_FIELD = /(?:\blevel|\blvl|\bseverity)["']?\s*[=:]\s*["']?([a-z]+)|\[(emerg|alert|crit|error|warn|notice|info|debug)\]/i;
const LEVELS = {
  fatal: "error", panic: "error", crit: "error", critical: "error", emerg: "error",
  alert: "error", severe: "error", error: "error", err: "error",
  warn: "warn", warning: "warn", info: "info", notice: "info", debug: "debug", trace: "debug",
};

/** Return "error", "warn", "info", "debug" or "" for a log line (looks at its first 300 chars). */
export function lineLevel(line) {
  const head = line.length > 300 ? line.slice(0, 300) : line;
  const word = LEVEL_WORD.exec(head);
  if (word) return LEVELS[word[1].toLowerCase()] || "";
  const field = LEVEL_FIELD.exec(head);
  if (field) return LEVELS[(field[1] || field[2]).toLowerCase()] || "";
  return "";
}

const TIMESTAMP = /^(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\])/;

/** The timestamp a line starts with (ISO 8601, syslog or common log format), or "". */
export function leadingTimestamp(line) {
  const match = TIMESTAMP.exec(line);
  return match ? match[0] : "";
}
