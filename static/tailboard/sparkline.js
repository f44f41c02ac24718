// Lines per second of one pane, counted as they arrive and drawn as a small canvas sparkline.

const SAMPLES = 60;

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
    const peak = Math.max(1, ...this.samples);
    const step = width / (SAMPLES - 1);
    const y = (v) => height - 1.5 - (v / peak) * (height - 3);
    const style = getComputedStyle(canvas);
    const stroke = style.color;
    ctx.beginPath();
    ctx.moveTo(0, y(this.samples[0]));
    for (let i = 1; i < SAMPLES; i += 1) ctx.lineTo(i * step, y(this.samples[i]));
    ctx.lineWidth = 1.25;
    ctx.strokeStyle = stroke;
    ctx.stroke();
    ctx.lineTo(width, height);
    ctx.lineTo(0, height);
    ctx.closePath();
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = stroke;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}
