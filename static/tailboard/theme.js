// Dark or light theme, remembered in localStorage. A classic script loaded in <head> so the
// page is drawn in the right theme from the first frame; it also wires the toggle button.
(function theme() {
  const KEY = "tailboard.theme";
  const root = document.documentElement;

  function stored() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (err) {
      return null;
    }
  }

  function preferred() {
    const value = stored();
    if (value === "dark" || value === "light") return value;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }

  function apply(value) {
    root.dataset.theme = value;
    const button = document.getElementById("theme-toggle");
    if (button) {
      // The button names the theme it switches to: "☀ Light theme" while dark, and back.
      button.dataset.theme = value;
      const label = value === "light" ? button.dataset.labelDark : button.dataset.labelLight;
      if (label) button.textContent = label;
    }
  }

  apply(preferred());
  document.addEventListener("DOMContentLoaded", () => {
    apply(root.dataset.theme);
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", () => {
      const next = root.dataset.theme === "light" ? "dark" : "light";
      try {
        window.localStorage.setItem(KEY, next);
      } catch (err) {
        // Private mode: the choice lasts for this page only.
      }
      apply(next);
      document.dispatchEvent(new CustomEvent("tailboard:theme", { detail: next }));
    });
  });
})();
