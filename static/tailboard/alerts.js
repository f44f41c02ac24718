// Alerts when a highlight rule matches a line nobody is looking at: the page title counts them
// ("(3) Tailboard") until the page is looked at again, and a pane that opted in shows a desktop
// notification (Notification API), at most one per pane per NOTIFY_INTERVAL_MS.
import { t } from "./i18n.js";

/** The shortest time between two desktop notifications of one pane. */
export const NOTIFY_INTERVAL_MS = 10000;

/** The page title with an unseen-match count in front: "(3) Tailboard". */
export function badgedTitle(title, count) {
  const bare = String(title).replace(/^\(\d+\+?\)\s+/, "");
  if (count <= 0) return bare;
  return `(${count > 999 ? "999+" : count}) ${bare}`;
}

/** The page-wide count of unseen matches, shown in the document title. */
export class TitleBadge {
  constructor(doc = document) {
    this.doc = doc;
    this.count = 0;
    doc.addEventListener("visibilitychange", () => { if (!doc.hidden) this.seenIfVisible(); });
    window.addEventListener("focus", () => this.seenIfVisible());
  }

  /** Count `n` more unseen matches. */
  add(n) {
    this.count += n;
    this.doc.title = badgedTitle(this.doc.title, this.count);
  }

  /** Forget the count (the user looks at the page). */
  reset() {
    if (!this.count) return;
    this.count = 0;
    this.doc.title = badgedTitle(this.doc.title, 0);
  }

  seenIfVisible() {
    if (!this.doc.hidden) this.reset();
  }
}

/** One pane's alerting: whether it is out of sight, its opt-in notifications and their limit. */
export class PaneAlerts {
  /** `pane` gives el, output, view, sourceLabel(); `badge` is the page's TitleBadge. */
  constructor(pane, button, badge, { signal, now = () => Date.now() } = {}) {
    this.pane = pane;
    this.button = button;
    this.badge = badge;
    this.now = now;
    this.enabled = false;
    this.lastNotified = -Infinity;
    this.onScreen = true;
    this.suppressed = 0;
    if (typeof IntersectionObserver === "function") {
      const observer = new IntersectionObserver((records) => {
        for (const record of records) this.onScreen = record.isIntersecting;
      });
      observer.observe(pane.output);
      signal?.addEventListener("abort", () => observer.disconnect());
    }
    button.addEventListener("click", () => this.setEnabled(!this.enabled, true));
  }

  /** Whether the pane's newest lines are out of sight: tab hidden, pane scrolled away or collapsed, not following. */
  get hidden() {
    if (document.hidden || !document.hasFocus()) return true;
    if (!this.onScreen) return true;
    const output = this.pane.output;
    if (!output.isConnected || output.clientHeight < 8) return true;
    return !this.pane.view.follow;
  }

  /** Turn desktop notifications on or off; turning on asks for the permission when needed. */
  async setEnabled(on, ask = false) {
    this.enabled = on;
    this.button.setAttribute("aria-pressed", String(on));
    this.pane.board.changed();
    if (!on || !ask) return;
    if (typeof Notification === "undefined") {
      this.pane.showProblem(t("alerts_unsupported"));
      return;
    }
    let permission = Notification.permission;
    if (permission === "default") {
      try {
        permission = await Notification.requestPermission();
      } catch {
        permission = "denied";
      }
    }
    if (permission !== "granted") this.pane.showProblem(t("alerts_denied"));
  }

  /** `n` lines matched a highlight rule: count them when unseen; notify if opted in. */
  matched(n, sample = "") {
    if (!this.hidden) return;
    this.badge.add(n);
    if (!this.enabled || typeof Notification === "undefined") return;
    if (Notification.permission !== "granted") return;
    const now = this.now();
    if (now - this.lastNotified < NOTIFY_INTERVAL_MS) {
      this.suppressed += n;
      return;
    }
    const count = n + this.suppressed;
    this.lastNotified = now;
    this.suppressed = 0;
    try {
      const note = new Notification(t("alert_title", { source: this.pane.sourceLabel(), n: count }), {
        body: String(sample).slice(0, 240), tag: `tailboard-pane-${this.pane.number}`,
      });
      note.onclick = () => {
        window.focus();
        this.pane.output.focus();
        this.pane.el.scrollIntoView({ block: "nearest" });
      };
    } catch {
      // Some browsers only allow notifications from a service worker: the title still counts.
    }
  }
}
