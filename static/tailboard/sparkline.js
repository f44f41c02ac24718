// Lines per second of one pane, counted as they arrive and drawn as a small canvas sparkline.

const SAMPLES = 60;
/** The scale never goes below this many events per second. */
export const SCALE_FLOOR = 10;
/** A second with at least one event is drawn at least this high. */
export const MIN_BAR_PX = 3;

/**
 * The bar height (px) of each sample on a canvas `height` px high: a log scale whose top is at
 * least SCALE_FLOOR/s, and at least MIN_BAR_PX for any second with an event (0 for none).
 */
export function barHeights(samples, height) {
  const peak = Math.max(SCALE_FLOOR, ...samples);
  return samples.map((value) => (value > 0
    ? Math.min(height, Math.max(MIN_BAR_PX, Math.round((Math.log1p(value) / Math.log1p(peak)) * height)))
    : 0));
}

/** Counts events per second over the last minute and draws them on a canvas. */
export class RateMeter {
  constructor(canvas, label) {
    this.canvas = canvas;
    this.label = label;
    this.samples = new Array(SAMPLES).fill(0);
    this.current = 0;
    this.colour = "";
  }

  /** Count `n` more events in the current second. */
  add(n) {
    this.current += n;
  }

  /** Close the current second (call once a second): shift the window and redraw. */
  tick(format) {
    this.samples.push(this.current);
    this.samples.shift();
    this.current = 0;
    const latest = this.samples[SAMPLES - 1];
    this.label.textContent = format(latest);
    this.draw();
  }

  /** Forget the history. */
  reset(format) {
    this.samples.fill(0);
    this.current = 0;
    this.label.textContent = format(0);
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 96;
    const height = canvas.clientHeight || 20;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    ctx.fillStyle = style.color;
    // Bars, one per second, on a scale of at least SCALE_FLOOR/s: a quiet log (1–2 lines/s)
    // shows low but clearly visible bars, and any second with a line is at least MIN_BAR px.
    const heights = barHeights(this.samples, height);
    const step = width / SAMPLES;
    const bar = Math.max(1, step - (step > 2.5 ? 1 : 0));
    ctx.globalAlpha = 0.25;
    ctx.fillRect(0, height - 1, width, 1);
    ctx.globalAlpha = 1;
    for (let i = 0; i < SAMPLES; i += 1) {
      const h = heights[i];
      if (h <= 0) continue;
      ctx.fillRect(i * step, height - h, bar, h);
    }
  }
}
