// A labelled grid of coloured cells on a <canvas>: the confusion matrix, its change since the
// previous epoch, and per-class recall over epochs. Cells come as colour indices into a Scale
// (colors.js); above a few pixels per cell they are drawn one rectangle each, below as an
// image, pooled so that no nonzero cell disappears (the strongest cell of each block wins).

const FONT = '12px Roboto, "Helvetica Neue", Arial, sans-serif';
const SMALL_FONT = '11px Roboto, "Helvetica Neue", Arial, sans-serif';
const LABEL_MAX = 150;  // px of a class name beside the grid
const MIN_LABEL_PX = 12;  // a label per row/column from this cell size on, else every k-th

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= width) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

// g: {rows, cols, rowLabels, colLabels, colors: Int16Array(rows * cols) of colour indices
//     (0..255, -1: no data; row-major), scale, divergent, text(i, j) -> string|null,
//     width, height (the CSS pixels to fit in), square, xTitle, yTitle, diagonal,
//     outlines: [{i, j, color, width}], markCol}
// Returns the layout, with hit(x, y) -> [i, j] | null in CSS pixels.
export function drawGrid(canvas, g) {
  const ctx = canvas.getContext('2d');
  const box = layoutGrid(ctx, g);
  sizeCanvas(canvas, ctx, box);
  drawCells(ctx, g, box);
  drawCellText(ctx, g, box);
  drawOutlines(ctx, g, box);
  drawRowLabels(ctx, g, box);
  drawColLabels(ctx, g, box);
  drawAxisTitles(ctx, g, box);
  const {left, top, cellW, cellH} = box;
  return {
    left, top, cellW, cellH, rows: g.rows, cols: g.cols,
    hit(x, y) {
      const j = Math.floor((x - left) / cellW);
      const i = Math.floor((y - top) / cellH);
      return i >= 0 && j >= 0 && i < g.rows && j < g.cols ? [i, j] : null;
    },
    cellCenter(i, j) {
      return [left + (j + 0.5) * cellW, top + (i + 0.5) * cellH];
    },
  };
}

// Where everything goes, in CSS pixels: the label margins, the cell size (square cells for a
// matrix), whether the column labels are rotated, and the canvas size.
function layoutGrid(ctx, g) {
  ctx.font = FONT;
  const widest = (labels) => Math.min(LABEL_MAX, Math.max(0, ...labels.map((s) => ctx.measureText(s).width)));
  const rowLabelW = widest(g.rowLabels) + 8;
  const colLabelW = widest(g.colLabels) + 8;
  const left = 22 + rowLabelW;
  const top = 8;
  const availW = Math.max(40, g.width - left - 12);
  // below the grid: the column labels (rotated by 45 degrees unless they fit level) and the title
  const bottomFor = (rotated) => (rotated ? Math.min(colLabelW, 110) * 0.72 + 14 : 20) + 22;
  const fits = (cell) => g.colLabels.every((s) => ctx.measureText(s).width <= cell - 2);
  let cellW;
  let cellH;
  let rotate = true;
  for (const rotated of [true, false]) {
    const availH = Math.max(60, (g.height || 700) - top - bottomFor(rotated));
    let w = availW / g.cols;
    let hh;
    if (g.square) {
      w = hh = Math.max(0.25, Math.min(72, w, availH / g.rows));
    } else {
      w = Math.min(w, 40);
      hh = Math.max(0.5, Math.min(22, availH / g.rows));
    }
    if (rotated || fits(w)) [cellW, cellH, rotate] = [w, hh, rotated && !fits(w)];
  }
  if (cellW >= 4) [cellW, cellH] = [Math.floor(cellW), Math.max(0.5, cellH >= 4 ? Math.floor(cellH) : cellH)];
  const gridW = cellW * g.cols;
  const gridH = cellH * g.rows;
  return {
    rowLabelW, left, top, cellW, cellH, gridW, gridH, rotate,
    cssW: Math.ceil(left + gridW + 12), cssH: Math.ceil(top + gridH + bottomFor(rotate)),
    dpr: window.devicePixelRatio || 1,
  };
}

function sizeCanvas(canvas, ctx, {cssW, cssH, dpr}) {
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
}

// One rectangle per cell from a few device pixels per cell on, else one pooled image.
function drawCells(ctx, g, box) {
  if (box.cellW * box.dpr >= 3 && box.cellH * box.dpr >= 3) drawCellRects(ctx, g, box);
  else drawPooledCells(ctx, g, box);
}

function drawCellRects(ctx, g, {left, top, cellW, cellH}) {
  for (let i = 0; i < g.rows; i++) {
    for (let j = 0; j < g.cols; j++) {
      const k = g.colors[i * g.cols + j];
      ctx.fillStyle = k < 0 ? '#eeeeee' : g.scale.cssAt(k);
      ctx.fillRect(left + j * cellW, top + i * cellH, Math.ceil(cellW), Math.ceil(cellH));
    }
  }
}

// The grid as an image of at most one pixel per cell: the cells falling on one device pixel
// pooled, the strongest colour (farthest from white on a diverging scale) winning.
function drawPooledCells(ctx, g, {left, top, gridW, gridH, dpr}) {
  const w = Math.min(g.cols, Math.max(1, Math.round(gridW * dpr)));
  const h = Math.min(g.rows, Math.max(1, Math.round(gridH * dpr)));
  const best = new Int16Array(w * h).fill(-1);
  const prio = new Int16Array(w * h).fill(-1);
  const colAt = Int32Array.from({length: g.cols}, (_, j) => Math.floor((j * w) / g.cols));
  for (let i = 0; i < g.rows; i++) {
    const y = Math.floor((i * h) / g.rows) * w;
    const row = g.colors.subarray(i * g.cols, (i + 1) * g.cols);
    for (let j = 0; j < g.cols; j++) {
      const k = row[j];
      if (k < 0) continue;
      const p = g.divergent ? Math.abs(k - 128) : k;
      const at = y + colAt[j];
      if (p > prio[at]) {
        prio[at] = p;
        best[at] = k;
      }
    }
  }
  const image = new ImageData(w, h);
  const words = new Uint32Array(image.data.buffer);
  for (let p = 0; p < words.length; p++) words[p] = best[p] < 0 ? g.scale.noData : g.scale.packed[best[p]];
  const off = document.createElement('canvas');
  off.width = w;
  off.height = h;
  off.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, left, top, gridW, gridH);
}

// The numbers in the cells, when they fit, black or white by the cell's colour.
function drawCellText(ctx, g, {left, top, cellW, cellH}) {
  if (!g.text || cellW < 30 || cellH < 16) return;
  ctx.font = cellW >= 44 ? FONT : SMALL_FONT;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (let i = 0; i < g.rows; i++) {
    for (let j = 0; j < g.cols; j++) {
      const text = g.text(i, j);
      if (text === null) continue;
      ctx.fillStyle = g.scale.textColorAt(Math.max(0, g.colors[i * g.cols + j]));
      ctx.fillText(text, left + (j + 0.5) * cellW, top + (i + 0.5) * cellH);
    }
  }
}

// The diagonal, then the highlights (largest confusions, selection), a marked column, the frame.
function drawOutlines(ctx, g, {left, top, cellW, cellH, gridW, gridH}) {
  if (g.diagonal && cellW >= 4) {
    ctx.strokeStyle = 'rgba(33,33,33,0.55)';
    ctx.lineWidth = 1;
    for (let i = 0; i < Math.min(g.rows, g.cols); i++) {
      ctx.strokeRect(left + i * cellW + 0.5, top + i * cellH + 0.5, cellW - 1, cellH - 1);
    }
  }
  for (const o of g.outlines || []) {
    const lw = o.width || 2;
    const pad = cellW >= 6 ? lw / 2 : -lw;
    ctx.strokeStyle = o.color;
    ctx.lineWidth = lw;
    ctx.strokeRect(left + o.j * cellW + pad, top + o.i * cellH + pad,
      Math.max(cellW - 2 * pad, 2), Math.max(cellH - 2 * pad, 2));
  }
  if (g.markCol !== undefined && g.markCol !== null) {
    ctx.strokeStyle = '#212121';
    ctx.lineWidth = 2;
    ctx.strokeRect(left + g.markCol * cellW + 1, top, Math.max(cellW - 2, 2), gridH);
  }
  ctx.strokeStyle = '#bdbdbd';
  ctx.lineWidth = 1;
  ctx.strokeRect(left - 0.5, top - 0.5, gridW + 1, gridH + 1);
}

// A label per row, or every k-th when the rows are thinner than MIN_LABEL_PX.
function drawRowLabels(ctx, g, {rowLabelW, left, top, cellH}) {
  ctx.font = FONT;
  ctx.fillStyle = '#424242';
  const rowStep = Math.max(1, Math.ceil(MIN_LABEL_PX / cellH));
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i < g.rows; i += rowStep) {
    ctx.fillText(fitText(ctx, g.rowLabels[i], rowLabelW - 8), left - 6, top + (i + 0.5) * cellH);
  }
}

// Below the grid, level or rotated by 45 degrees.
function drawColLabels(ctx, g, {left, top, cellW, gridH, rotate}) {
  const colStep = Math.max(1, Math.ceil((rotate ? 1.5 * MIN_LABEL_PX : MIN_LABEL_PX) / cellW));
  for (let j = 0; j < g.cols; j += colStep) {
    const x = left + (j + 0.5) * cellW;
    const label = fitText(ctx, g.colLabels[j], rotate ? 110 : cellW * colStep);
    ctx.save();
    if (rotate) {
      ctx.translate(x, top + gridH + 6);
      ctx.rotate(-Math.PI / 4);
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(label, 0, 0);
    } else {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      ctx.fillText(label, x, top + gridH + 5);
    }
    ctx.restore();
  }
}

function drawAxisTitles(ctx, g, {left, top, gridW, gridH, cssH}) {
  ctx.fillStyle = '#616161';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'bottom';
  ctx.fillText(g.xTitle || '', left + gridW / 2, cssH - 2);
  ctx.save();
  ctx.translate(11, top + gridH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText(g.yTitle || '', 0, 0);
  ctx.restore();
}
