// Pure text matching for panes: the filter box, highlight rules and log levels. No DOM here.
// Patterns arrive from the page URL as well as from the keyboard, so no user pattern ever runs on
// the browser's backtracking RegExp: "/re/flags" terms are compiled by RE2 (vendor/re2js.js,
// time linear in the line) and plain terms are substring searches. The fixed patterns below
// (levels, timestamps, rule splitting) have no nested or adjacent ambiguous repeats.

import { RE2JS } from "./vendor/re2js.js";

const REGEX_LITERAL = /^\/(.*)\/([dgimsuy]*)$/s;
const FLAGS = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL };

/** Longest "/re/" source accepted, in UTF-16 units. */
export const MAX_PATTERN_LENGTH = 1000;
/** Largest compiled RE2 program accepted: bounds the per-character cost of a search. */
export const MAX_PROGRAM_SIZE = 400;
/** Highlight rules beyond this many are ignored (with an error shown). */
export const MAX_RULES = 32;
/** Marks per rule and line, as before. */
const MAX_MARKS = 64;
/** Time one line may spend looking for highlights; past it the line keeps the marks found. */
export const HIGHLIGHT_BUDGET_MS = 8;

const LINEAR = "patterns use RE2 syntax, which matches in linear time";
const REFUSED = [
  [/^\\(?:[1-9]|k)/, "backreferences are not supported"],
  [/^\(\?[=!]/, "lookahead is not supported"],
  [/^\(\?<[=!]/, "lookbehind is not supported"],
];

/** Rewrite the JavaScript-only escapes \uXXXX, \u{X}, \cX and \0 into RE2's \x{X}. */
export function toRE2Syntax(source) {
  const out = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c !== "\\" || i + 1 >= source.length) {
      out.push(c);
      i += 1;
      continue;
    }
    const next = source[i + 1];
    const unit = next === "u" ? /^[0-9a-fA-F]{4}/.exec(source.slice(i + 2, i + 6)) : null;
    const point = next === "u" ? /^\{([0-9a-fA-F]{1,6})\}/.exec(source.slice(i + 2, i + 10)) : null;
    if (unit) {
      let code = parseInt(unit[0], 16);
      i += 6;
      const low = /^\\u(d[c-f][0-9a-f]{2})/i.exec(source.slice(i, i + 6));
      if (code >= 0xd800 && code <= 0xdbff && low) {
        code = 0x10000 + ((code - 0xd800) << 10) + (parseInt(low[1], 16) - 0xdc00);
        i += 6;
      }
      out.push(`\\x{${code.toString(16)}}`);
    } else if (point) {
      out.push(`\\x{${point[1]}}`);
      i += 2 + point[0].length;
    } else if (next === "c" && /^[A-Za-z]$/.test(source[i + 2] || "")) {
      out.push(`\\x{${(source.charCodeAt(i + 2) % 32).toString(16)}}`);
      i += 3;
    } else if (next === "0" && !/^[0-9]$/.test(source[i + 2] || "")) {
      out.push("\\x{0}");
      i += 2;
    } else {
      out.push(c, next);
      i += 2;
    }
  }
  return out.join("");
}

/** A short, clear reason why RE2 refused a pattern. */
function refusal(err) {
  const message = String((err && err.message) || err).replace(/^error parsing regexp: /, "");
  const tick = message.indexOf(": `");
  const snippet = tick === -1 ? "" : message.slice(tick + 3, message.endsWith("`") ? -1 : undefined);
  for (const [construct, reason] of REFUSED) {
    const found = construct.exec(snippet);
    if (found) return `${found[0]}: ${reason} (${LINEAR})`;
  }
  return message;
}

/** A matcher for a compiled RE2 pattern: test(text) and ranges(text, limit, deadline). */
function patternMatcher(pattern) {
  return {
    test: (text) => pattern.test(text),
    ranges(text, limit, deadline = Infinity) {
      const found = [];
      if (!pattern.test(text)) return found;
      const matcher = pattern.matcher(text);
      while (found.length < limit && performance.now() < deadline && matcher.find()) {
        const start = matcher.start();
        const end = matcher.end();
        if (end > start) found.push([start, end]);
      }
      return found;
    },
  };
}

/** Lower-case text one code point at a time, keeping where each unit came from. */
function foldWithOrigins(text) {
  const parts = [];
  const starts = [];
  const ends = [];
  for (let i = 0; i < text.length;) {
    const width = text.codePointAt(i) > 0xffff ? 2 : 1;
    const lower = text.slice(i, i + width).toLowerCase();
    parts.push(lower);
    for (let k = 0; k < lower.length; k += 1) {
      starts.push(i);
      ends.push(i + width);
    }
    i += width;
  }
  return { folded: parts.join(""), starts, ends };
}

/** A matcher for a plain substring; `caseless` compares lower-cased text to a lower-case term. */
function substringMatcher(term, caseless) {
  const each = (haystack, limit, place) => {
    const found = [];
    let at = haystack.indexOf(term);
    while (at !== -1 && found.length < limit) {
      found.push(place(at, at + term.length));
      at = haystack.indexOf(term, at + term.length);
    }
    return found;
  };
  if (!caseless) {
    return { test: (text) => text.includes(term), ranges: (text, limit) => each(text, limit, (a, b) => [a, b]) };
  }
  return {
    test: (text) => text.toLowerCase().includes(term),
    ranges(text, limit) {
      const lower = text.toLowerCase();
      // Lower-casing only grows a few characters (İ); then map positions back through the fold.
      if (lower.length === text.length) return each(lower, limit, (a, b) => [a, b]);
      const { folded, starts, ends } = foldWithOrigins(text);
      return each(folded, limit, (a, b) => [starts[a], ends[b - 1]]);
    },
  };
}

/**
 * Compile one term: "/re/flags" is an RE2 regular expression (flags i, m, s, u; d, g, y are
 * ignored), anything else a substring that is case-insensitive unless it has a capital letter
 * ("smart case"). Returns {matcher} or {error}; a matcher has test(text) -> bool and
 * ranges(text, limit, deadline) -> [[start, end], ...] (non-empty, left to right, UTF-16).
 */
export function compileTerm(term) {
  const literal = REGEX_LITERAL.exec(term);
  if (literal && literal[1] !== "") {
    const source = literal[1];
    if (source.length > MAX_PATTERN_LENGTH) {
      return { error: `pattern is too long (${source.length} characters, at most ${MAX_PATTERN_LENGTH})` };
    }
    let flags = 0;
    for (const flag of literal[2]) flags |= FLAGS[flag] || 0;
    let pattern;
    try {
      pattern = RE2JS.compile(toRE2Syntax(source), flags);
    } catch (err) {
      return { error: refusal(err) };
    }
    if (pattern.programSize() > MAX_PROGRAM_SIZE) {
      return { error: `pattern is too large (${pattern.programSize()} steps, at most ${MAX_PROGRAM_SIZE})` };
    }
    return { matcher: patternMatcher(pattern) };
  }
  const caseless = term === term.toLowerCase();
  return { matcher: substringMatcher(term, caseless) };
}

/** Return {test(text) -> bool} for the filter box, null when it is empty, or {error}. */
export function compileFilter(text) {
  const term = text.trim();
  if (!term) return null;
  const compiled = compileTerm(term);
  if (compiled.error) return { error: compiled.error };
  const matcher = compiled.matcher;
  return { test: (line) => matcher.test(line) };
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

/** Compile highlight rules: returns {rules: [{matcher, colour}], errors: [text]}. */
export function compileHighlights(text, colours = 6) {
  const rules = [];
  const errors = [];
  const terms = splitRules(text);
  for (const term of terms.slice(0, MAX_RULES)) {
    const compiled = compileTerm(term);
    if (compiled.error) errors.push(`${term}: ${compiled.error}`);
    else rules.push({ matcher: compiled.matcher, colour: rules.length % colours });
  }
  if (terms.length > MAX_RULES) errors.push(`only the first ${MAX_RULES} rules are used`);
  return { rules, errors };
}

/**
 * Split a line into [text, colour|null] segments for the highlight rules; an earlier rule wins
 * where matches overlap. Returns null when nothing matches (the common, cheap case). A line
 * stops looking for more marks once it has spent `budgetMs` (HIGHLIGHT_BUDGET_MS).
 */
export function highlightSegments(line, rules, budgetMs = HIGHLIGHT_BUDGET_MS) {
  const deadline = performance.now() + budgetMs;
  let marks = null;
  for (const rule of rules) {
    for (const [start, end] of rule.matcher.ranges(line, MAX_MARKS, deadline)) {
      marks ??= [];
      if (!marks.some((m) => start < m.end && end > m.start)) marks.push({ start, end, colour: rule.colour });
    }
    if (performance.now() >= deadline) break;
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
  if (word) return levelNamed(word[1]);
  const field = LEVEL_FIELD.exec(head);
  if (field) return levelNamed(field[1] || field[2]);
  return "";
}

/** The level a word names, looked up in LEVELS' own keys only ("constructor" names none). */
function levelNamed(word) {
  const key = word.toLowerCase();
  return Object.hasOwn(LEVELS, key) ? LEVELS[key] : "";
}

const TIMESTAMP = /^(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\])/;

/** The timestamp a line starts with (ISO 8601, syslog or common log format), or "". */
export function leadingTimestamp(line) {
  const match = TIMESTAMP.exec(line);
  return match ? match[0] : "";
}
