// Times of rows: the moment a line's own timestamp names (ISO 8601 or common log format), shown
// as written, in the viewer's local time, or relative to now ("12 s ago"). Pure, no DOM.
import { LANG } from "./i18n.js";

/** The time modes of a pane, in the order its toggle cycles through them. */
export const TIME_MODES = ["sent", "local", "relative"];

const MONTHS = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const ISO = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?$/;
const CLF = /^\[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\]$/;

/** Milliseconds since the epoch of a timestamp as matchers.js's leadingTimestamp finds it, or NaN. */
export function stampTime(stamp) {
  const text = String(stamp ?? "");
  const iso = ISO.exec(text);
  if (iso) {
    const [, y, mo, d, h, mi, s, frac, zone] = iso;
    const ms = frac ? Number(frac.slice(0, 3).padEnd(3, "0")) : 0;
    if (!zone) return new Date(+y, +mo - 1, +d, +h, +mi, +s, ms).getTime();
    const utc = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, ms);
    if (zone === "Z") return utc;
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    return utc - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60000;
  }
  const clf = CLF.exec(text);
  if (clf) {
    const [, d, mon, y, h, mi, s, sign, zh, zm] = clf;
    const month = MONTHS[mon.toLowerCase()];
    if (month === undefined) return NaN;
    const utc = Date.UTC(+y, month, +d, +h, +mi, +s);
    return utc - (sign === "-" ? -1 : 1) * (Number(zh) * 60 + Number(zm)) * 60000;
  }
  return NaN;
}

const sameDay = new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const otherDay = new Intl.DateTimeFormat(LANG, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const full = new Intl.DateTimeFormat(LANG, { dateStyle: "medium", timeStyle: "medium" });

/** A time in the viewer's zone: "14:03:22" today, "May 1, 14:03:22" another day. */
export function localClock(ms, now = Date.now()) {
  const date = new Date(ms);
  return new Date(now).toDateString() === date.toDateString() ? sameDay.format(date) : otherDay.format(date);
}

/** A time with its date in full (for a tooltip). */
export function fullTime(ms) {
  return full.format(new Date(ms));
}

const relative = new Intl.RelativeTimeFormat(LANG, { numeric: "auto", style: "short" });

/** How long ago `ms` was, in the page language: "now", "12 sec. ago", "3 min. ago", "2 hr. ago". */
export function relativeTime(ms, now = Date.now()) {
  const seconds = Math.round((ms - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 60) return relative.format(size < 2 ? 0 : seconds, "second");
  if (size < 3600) return relative.format(Math.trunc(seconds / 60), "minute");
  if (size < 86400) return relative.format(Math.trunc(seconds / 3600), "hour");
  return relative.format(Math.trunc(seconds / 86400), "day");
}
