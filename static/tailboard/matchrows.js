// Rows of history-search results and of the view around a line, built with textContent only:
// a match with its file, line number (a link to the view around it) and dimmed context lines;
// a numbered line of the view around a line, the target marked.
import { fileTag } from "./files.js";
import { t } from "./i18n.js";
import { lineLevel } from "./matchers.js";

function numberCell(lineNo, href) {
  const cell = document.createElement(href ? "a" : "span");
  cell.className = "ln";
  cell.textContent = String(lineNo);
  if (href) {
    cell.href = href;
    cell.title = t("open_around", { n: lineNo });
  }
  return cell;
}

function contextRow(lineNo, text) {
  const row = document.createElement("div");
  row.className = "ctx";
  row.appendChild(numberCell(lineNo, ""));
  row.appendChild(document.createTextNode(text));
  return row;
}

/**
 * The node of one search match: {file, lineNo, text, before, after}. `decorate(element, text)`
 * fills the match line (highlights); `href` is the link to the view around it.
 */
export function matchNode(record, decorate, href) {
  const node = document.createElement("div");
  node.className = "match";
  record.before.forEach((text, i) => {
    node.appendChild(contextRow(record.lineNo - record.before.length + i, text));
  });
  const line = document.createElement("div");
  const level = lineLevel(record.text);
  line.className = level ? `match-line lvl-${level}` : "match-line";
  line.appendChild(fileTag(record.file));
  const link = numberCell(record.lineNo, href);
  link.dataset.file = record.file;
  link.dataset.line = String(record.lineNo);
  line.appendChild(link);
  decorate(line, record.text);
  node.appendChild(line);
  record.after.forEach((text, i) => node.appendChild(contextRow(record.lineNo + 1 + i, text)));
  return node;
}

/** The node of one numbered line of the view around a line ({lineNo, text, target}). */
export function numberedNode(record, decorate) {
  const row = document.createElement("div");
  const level = lineLevel(record.text);
  row.className = `line numbered${level ? ` lvl-${level}` : ""}${record.target ? " target" : ""}`;
  if (record.target) row.setAttribute("aria-current", "true");
  row.appendChild(numberCell(record.lineNo, ""));
  decorate(row, record.text);
  return row;
}

/** Search results as grep -n -H text: "file:N:line", context "file-N-line", "--" between. */
export function resultsText(results) {
  const out = [];
  let last = null;
  for (const match of results) {
    const first = match.line_no - match.before.length;
    if (last && (last.file !== match.file || first > last.end + 1)) out.push("--");
    match.before.forEach((text, i) => out.push(`${match.file}-${first + i}-${text}`));
    out.push(`${match.file}:${match.line_no}:${match.line}`);
    match.after.forEach((text, i) => out.push(`${match.file}-${match.line_no + 1 + i}-${text}`));
    last = { file: match.file, end: match.line_no + match.after.length };
  }
  return out.length ? `${out.join("\n")}\n` : "";
}
