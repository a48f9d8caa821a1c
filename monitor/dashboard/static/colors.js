// Colour scales as 256-entry lookup tables: packed ImageData words (RGBA bytes, little-endian)
// for the heatmaps, CSS strings for the legend. A scale maps a position t in [0, 1] to a colour.

const ORANGES = ['#ffffff', '#fff1e2', '#fdd9b4', '#fdb97d', '#fd9243', '#f16913', '#d94801', '#a63603',
  '#6e2504'];
const RED_BLUE = ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#ffffff', '#fddbc7', '#f4a582', '#d6604d',
  '#b2182b'];
const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58',
  '#b5de2b', '#fde725'];
export const NO_DATA = [238, 238, 238];

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export class Scale {
  constructor(stops) {
    const rgb = stops.map(hexToRgb);
    this.rgb = new Uint8Array(256 * 3);
    this.packed = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      const x = (i / 255) * (rgb.length - 1);
      const k = Math.min(Math.floor(x), rgb.length - 2);
      const f = x - k;
      for (let ch = 0; ch < 3; ch++) {
        this.rgb[i * 3 + ch] = Math.round(rgb[k][ch] * (1 - f) + rgb[k + 1][ch] * f);
      }
      const [r, g, b] = this.rgb.subarray(i * 3, i * 3 + 3);
      this.packed[i] = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
    }
    this.noData = ((255 << 24) | (NO_DATA[2] << 16) | (NO_DATA[1] << 8) | NO_DATA[0]) >>> 0;
    this.cssTable = Array.from({length: 256}, (_, k) =>
      `rgb(${this.rgb[k * 3]},${this.rgb[k * 3 + 1]},${this.rgb[k * 3 + 2]})`);
  }

  // By colour index k in 0..255 (what index(t) returns).
  cssAt(k) {
    return this.cssTable[k];
  }

  textColorAt(k) {
    return this.textColor(k / 255);
  }

  index(t) {
    return t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
  }

  css(t) {
    if (Number.isNaN(t)) return `rgb(${NO_DATA.join(',')})`;
    const i = this.index(t) * 3;
    return `rgb(${this.rgb[i]},${this.rgb[i + 1]},${this.rgb[i + 2]})`;
  }

  // Black or white, whichever reads better on the colour at t.
  textColor(t) {
    if (Number.isNaN(t)) return '#424242';
    const i = this.index(t) * 3;
    const lum = 0.2126 * this.rgb[i] + 0.7152 * this.rgb[i + 1] + 0.0722 * this.rgb[i + 2];
    return lum > 140 ? '#212121' : '#ffffff';
  }
}

export const sequential = new Scale(ORANGES);
export const diverging = new Scale(RED_BLUE);
export const recallScale = new Scale(VIRIDIS);

// Square-root scale: small confusions stay visible next to a dominant diagonal.
export const sqrtPos = (v, max) => (v <= 0 || !(max > 0) ? 0 : Math.min(1, Math.sqrt(v / max)));
export const sqrtInv = (t, max) => t * t * max;
// Diverging square-root scale: 0 -> 0.5 (white), -max -> 0 (blue), +max -> 1 (red).
export const divPos = (d, max) => {
  if (!(max > 0) || d === 0) return 0.5;
  const m = Math.min(1, Math.sqrt(Math.abs(d) / max));
  return d > 0 ? 0.5 + 0.5 * m : 0.5 - 0.5 * m;
};

// A colour bar with ticks. legend: {scale, position(v) -> t, ticks: [[v, label]], unit}
export function drawLegend(canvas, legend) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 260;
  const h = 40;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const x0 = 8;
  const bw = w - 16;
  for (let i = 0; i < bw; i++) {
    ctx.fillStyle = legend.scale.css(i / (bw - 1));
    ctx.fillRect(x0 + i, 4, 1.5, 14);
  }
  ctx.strokeStyle = '#bdbdbd';
  ctx.lineWidth = 1;
  ctx.strokeRect(x0 - 0.5, 3.5, bw + 1, 15);
  ctx.font = '11px Roboto, "Helvetica Neue", Arial, sans-serif';
  ctx.fillStyle = '#616161';
  ctx.textBaseline = 'top';
  let lastRight = -Infinity;
  for (const [v, label] of legend.ticks) {
    const x = x0 + legend.position(v) * (bw - 1);
    const tw = ctx.measureText(label).width;
    const left = Math.min(Math.max(x - tw / 2, 0), w - tw);
    ctx.fillRect(Math.round(x) - 0.5, 18, 1, 4);
    if (left < lastRight + 4) continue;
    ctx.fillText(label, left, 24);
    lastRight = left + tw;
  }
}
