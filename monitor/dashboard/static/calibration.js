// The calibration view: the reliability diagram of the slider's epoch (accuracy per confidence
// bin against the diagonal, the gap shaded red where the model is over-confident, blue where it is
// under-confident, the share of images per bin beneath) and the ECE over the epochs, the current
// one marked; with a compared run, its own beside. Drawn from the streamed statistics per bin
// (count, sum of confidences, count right), with monitor/calibration.py's formulas.

import {fixed, h, pct} from './dom.js';

const FONT = '12px Roboto, "Helvetica Neue", Arial, sans-serif';
const SMALL_FONT = '11px Roboto, "Helvetica Neue", Arial, sans-serif';
const OVER = 'rgba(198, 40, 40, 0.55)';  // confidence above accuracy
const UNDER = 'rgba(21, 101, 192, 0.5)';  // accuracy above confidence
const BAR = '#b0bec5';
const MARK = '#f57c00';
const CHART_H = 150;  // px: the ECE chart
const STRIP_H = 40;  // px: the share of images per bin, beneath the diagram
const AXIS_L = 46;
const TICKS = [0, 0.25, 0.5, 0.75, 1];

// From the flat (3, B) statistics (the B bins' counts, confidence sums, counts right): per bin
// {lo, hi, count, share, confidence, accuracy, gap: accuracy - confidence} (NaN where empty), and
// ece = sum_b (n_b / N) |acc_b - conf_b|, mce = max |acc_b - conf_b| over non-empty bins,
// overConfidence = mean confidence - accuracy, confidence, accuracy, count (N).
export function reliability(flat) {
  const B = flat.length / 3;
  let [total, confidenceSum, right] = [0, 0, 0];
  for (let b = 0; b < B; b++) [total, confidenceSum, right] = [total + flat[b], confidenceSum + flat[B + b], right + flat[2 * B + b]];
  const bins = [];
  let [ece, mce] = [0, 0];
  for (let b = 0; b < B; b++) {
    const count = flat[b];
    const confidence = count > 0 ? flat[B + b] / count : NaN;
    const accuracy = count > 0 ? flat[2 * B + b] / count : NaN;
    const gap = accuracy - confidence;
    if (count > 0) [ece, mce] = [ece + (count / total) * Math.abs(gap), Math.max(mce, Math.abs(gap))];
    bins.push({lo: b / B, hi: (b + 1) / B, count, share: total > 0 ? count / total : 0, confidence, accuracy, gap});
  }
  const none = total === 0;
  return {bins, count: total, ece: none ? NaN : ece, mce: none ? NaN : mce,
    confidence: none ? NaN : confidenceSum / total, accuracy: none ? NaN : right / total,
    overConfidence: none ? NaN : confidenceSum / total - right / total};
}

// The reliability of a run's epoch index k (null when it has no statistics), computed once.
export function calibrationAt(data, k) {
  const flat = data.epochs[k] && data.epochs[k].calibration;
  if (!flat) return null;
  data._calibration = data._calibration || new Map();
  if (!data._calibration.has(k)) data._calibration.set(k, reliability(flat));
  return data._calibration.get(k);
}

// [{k, step, ece}] of the run's epochs with statistics.
export function eceSeries(data) {
  const out = [];
  data.epochs.forEach((e, k) => {
    const stats = calibrationAt(data, k);
    if (stats && Number.isFinite(stats.ece)) out.push({k, step: e.step, ece: stats.ece});
  });
  return out;
}

const gapText = (gap) => (Number.isNaN(gap) ? '' : gap < 0 ? `over-confident by ${fixed(-gap)}`
  : gap > 0 ? `under-confident by ${fixed(gap)}` : 'calibrated');

function sizeCanvas(canvas, cssW, cssH) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  return ctx;
}

// The frame, grid lines and tick labels of a plot box {left, top, w, h} (y from 0 to yMax).
function drawAxes(ctx, box, yTicks, xTicks) {
  ctx.font = SMALL_FONT;
  ctx.strokeStyle = '#eeeeee';
  ctx.fillStyle = '#616161';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const [v, label] of yTicks) {
    const y = box.top + box.h * (1 - v);
    ctx.beginPath();
    ctx.moveTo(box.left, y);
    ctx.lineTo(box.left + box.w, y);
    ctx.stroke();
    ctx.fillText(label, box.left - 4, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const [v, label] of xTicks) ctx.fillText(label, box.left + box.w * v, box.top + box.h + 3);
  ctx.strokeStyle = '#9e9e9e';
  ctx.strokeRect(box.left + 0.5, box.top + 0.5, box.w - 1, box.h - 1);
}

// The reliability diagram of `stats` on `canvas`, `size` CSS pixels wide; returns the hit test
// (x in CSS pixels -> bin index or -1).
export function drawReliability(canvas, stats, size) {
  const box = {left: AXIS_L, top: 8, w: size - AXIS_L - 12, h: size - AXIS_L - 12};
  const strip = {top: box.top + box.h + 36, h: STRIP_H};
  const ctx = sizeCanvas(canvas, size, strip.top + strip.h + 6);
  const ticks = TICKS.map((v) => [v, String(v)]);
  drawAxes(ctx, box, ticks, ticks);
  const B = stats.bins.length;
  const [x, y] = [(v) => box.left + box.w * v, (v) => box.top + box.h * (1 - v)];
  const maxShare = Math.max(...stats.bins.map((b) => b.share)) || 1;
  stats.bins.forEach((bin, b) => {
    const [x0, w] = [x(b / B) + 1, box.w / B - 2];
    ctx.fillStyle = BAR;
    ctx.fillRect(x0, strip.top + strip.h * (1 - bin.share / maxShare), w, strip.h * (bin.share / maxShare));
    if (!(bin.count > 0)) return;
    ctx.fillRect(x0, y(bin.accuracy), w, box.top + box.h - y(bin.accuracy));
    ctx.fillStyle = bin.gap < 0 ? OVER : UNDER;
    ctx.fillRect(x0, Math.min(y(bin.accuracy), y(bin.confidence)), w, Math.abs(y(bin.accuracy) - y(bin.confidence)));
  });
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = '#424242';
  ctx.beginPath();
  ctx.moveTo(x(0), y(0));
  ctx.lineTo(x(1), y(1));
  ctx.stroke();
  ctx.setLineDash([]);
  drawReliabilityTitles(ctx, box, strip, maxShare);
  return (px) => (px >= box.left && px < box.left + box.w ? Math.min(B - 1, Math.floor(((px - box.left) / box.w) * B)) : -1);
}

function drawReliabilityTitles(ctx, box, strip, maxShare) {
  ctx.font = FONT;
  ctx.fillStyle = '#424242';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.fillText("Confidence (the predicted class's probability)", box.left + box.w / 2, box.top + box.h + 17);
  ctx.save();
  ctx.translate(12, box.top + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText('Accuracy', 0, -6);
  ctx.restore();
  ctx.font = SMALL_FONT;
  ctx.textAlign = 'left';
  ctx.fillStyle = '#757575';
  ctx.fillText(`images per bin (tallest ${pct(maxShare)})`, box.left + 2, strip.top - 1);
  ctx.strokeStyle = '#bdbdbd';
  ctx.beginPath();
  ctx.moveTo(box.left, strip.top + strip.h + 0.5);
  ctx.lineTo(box.left + box.w, strip.top + strip.h + 0.5);
  ctx.stroke();
}

// The ECE over the epochs (`series` from eceSeries), the epoch at `step` marked; y from 0 to yMax.
export function drawEceChart(canvas, series, step, width, yMax) {
  const box = {left: AXIS_L, top: 10, w: width - AXIS_L - 12, h: CHART_H - 40};
  const ctx = sizeCanvas(canvas, width, CHART_H);
  const [first, last] = series.length ? [series[0].step, series[series.length - 1].step] : [0, 0];
  const xAt = (s) => box.left + box.w * (last > first ? (s - first) / (last - first) : 0.5);
  const yAt = (v) => box.top + box.h * (1 - v / yMax);
  const xTicks = [...new Set([first, last])].map((s) => [last > first ? (s - first) / (last - first) : 0.5, `${s + 1}`]);
  drawAxes(ctx, box, [[0, '0'], [0.5, fixed(yMax / 2)], [1, fixed(yMax)]], xTicks);
  ctx.fillStyle = '#424242';
  ctx.font = SMALL_FONT;
  ctx.fillText('Epoch', box.left + box.w / 2, box.top + box.h + 16);
  const current = series.find((p) => p.step === step);
  if (current) {
    ctx.strokeStyle = MARK;
    ctx.beginPath();
    ctx.moveTo(xAt(step) + 0.5, box.top);
    ctx.lineTo(xAt(step) + 0.5, box.top + box.h);
    ctx.stroke();
  }
  ctx.strokeStyle = '#1565c0';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  series.forEach((p, i) => (i ? ctx.lineTo(xAt(p.step), yAt(p.ece)) : ctx.moveTo(xAt(p.step), yAt(p.ece))));
  ctx.stroke();
  ctx.lineWidth = 1;
  for (const p of series) {
    ctx.fillStyle = p === current ? MARK : '#1565c0';
    ctx.beginPath();
    ctx.arc(xAt(p.step), yAt(p.ece), p === current ? 4.5 : 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }
}

// The figures of one epoch as [label, text] rows (the sidebar's list).
export function calibrationFigures(stats) {
  return [['ECE', fixed(stats.ece, 4)], ['MCE', fixed(stats.mce, 4)],
    ['Over-confidence (confidence − accuracy)', fixed(stats.overConfidence, 4)],
    ['Mean confidence', pct(stats.confidence)], ['Accuracy', pct(stats.accuracy)], ['Images', String(stats.count)]];
}

export const binText = (bin) => `confidence ${bin.lo.toFixed(2)}–${bin.hi.toFixed(2)}: ${bin.count} images `
  + `(${pct(bin.share)})${bin.count > 0 ? ` · accuracy ${fixed(bin.accuracy)}, mean confidence `
  + `${fixed(bin.confidence)} · ${gapText(bin.gap)}` : ''}`;

// The bins as the page drew them, in a visually hidden table (for screen readers and the tests).
function updateBinsTable(table, stats, label, step) {
  if (!stats) {
    table.replaceChildren();
    table.removeAttribute('data-epoch');
    return;
  }
  const num = (v) => (Number.isNaN(v) ? 'NaN' : v.toFixed(6));
  const head = h('tr', {}, ...['Confidence bin', 'Images', 'Share', 'Mean confidence', 'Accuracy']
    .map((text) => h('th', {text})));
  const rows = stats.bins.map((bin, b) => h('tr', {'data-bin': String(b), 'data-count': String(bin.count),
    'data-share': num(bin.share), 'data-confidence': num(bin.confidence), 'data-accuracy': num(bin.accuracy)},
  h('th', {text: `${bin.lo.toFixed(3)}–${bin.hi.toFixed(3)}`}), h('td', {text: String(bin.count)}),
  h('td', {text: pct(bin.share)}), h('td', {text: fixed(bin.confidence)}), h('td', {text: fixed(bin.accuracy)})));
  Object.assign(table.dataset, {epoch: String(step), run: label, ece: String(stats.ece), mce: String(stats.mce),
    overConfidence: String(stats.overConfidence)});
  table.replaceChildren(h('caption', {text: `Reliability bins, ${label}, epoch ${step + 1}`}), head, ...rows);
}

export class CalibrationView {
  constructor(tooltip) {
    this.tooltip = tooltip;
    this.panels = [];
    this.box = h('div', {class: 'cal-panels'});
    this.root = h('div', {id: 'calibration', class: 'calibration', hidden: ''},
      h('p', {class: 'hint cal-key', text: 'Grey bars: the accuracy of the images in each confidence bin; dashed: '
        + 'perfect calibration. Red: over-confident (mean confidence above accuracy); blue: under-confident.'}),
      this.box);
  }

  // entries: [{data, k, label}], the run and, when compared, the second; each panel at most `width`
  // CSS pixels wide, the diagram and chart in about `height`.
  show(entries, width, height) {
    this.root.hidden = false;
    while (this.panels.length > entries.length) this.panels.pop().root.remove();
    const series = entries.map(({data}) => eceSeries(data));
    const yMax = Math.max(0.01, ...series.flat().map((p) => p.ece)) * 1.1;  // one scale for both runs
    // the chart under the diagram (170 px: titles, the strip), or beside it when that leaves it larger
    const under = Math.min(width, height - CHART_H - 170);
    const beside = entries.length === 1 ? Math.min((width - 24) / 2, height - 150) : 0;
    const size = Math.floor(Math.max(260, under, beside));
    entries.forEach((entry, p) => {
      const panel = this.panel(p);
      panel.root.classList.toggle('beside', beside > under);
      panel.root.style.width = `${beside > under ? 2 * size + 24 : size}px`;
      this.showPanel(panel, entry, series[p], size, yMax);
    });
  }

  hide() {
    if (this.root.hidden) return;
    this.root.hidden = true;
    this.tooltip.style.display = 'none';
  }

  panel(p) {
    if (!this.panels[p]) {
      const suffix = p ? '-compare' : '';
      const panel = {title: h('div', {id: `calibration-title${suffix}`, class: 'panel-title'}),
        note: h('div', {class: 'panel-note'}), chartTitle: h('div', {class: 'cal-chart-title'}),
        diagram: h('canvas', {id: `reliability${suffix}`, class: 'reliability', role: 'img'}),
        chart: h('canvas', {id: `ece-chart${suffix}`, class: 'ece-chart', role: 'img'}),
        table: h('table', {id: `calibration-bins${suffix}`})};
      panel.root = h('div', {class: 'cal-panel', 'data-panel': String(p)}, panel.title, panel.note,
        h('div', {class: 'cal-body'}, h('div', {}, panel.diagram), h('div', {}, panel.chartTitle, panel.chart)),
        h('div', {class: 'visually-hidden'}, panel.table));
      panel.diagram.addEventListener('mousemove', (event) => this.hover(panel, event));
      panel.diagram.addEventListener('mouseleave', () => { this.tooltip.style.display = 'none'; });
      this.box.append(panel.root);
      this.panels[p] = panel;
    }
    return this.panels[p];
  }

  showPanel(panel, {data, k, label}, series, size, yMax) {
    const step = data.steps[k];
    const stats = calibrationAt(data, k);
    panel.stats = stats;
    panel.title.textContent = `${label} · epoch ${step + 1}`
      + (stats ? ` · ECE ${fixed(stats.ece, 4)} · MCE ${fixed(stats.mce, 4)}` : '');
    panel.title.title = panel.title.textContent;  // in full, when it does not fit
    panel.note.textContent = stats ? `${stats.count} images · mean confidence ${pct(stats.confidence)}, accuracy `
      + `${pct(stats.accuracy)}: ${gapText(-stats.overConfidence) || 'no images'}`
      : 'No calibration statistics for this epoch (a log from before the dashboard had them, or the run '
        + 'was trained with calibration off).';
    panel.diagram.hidden = !stats;
    if (stats) {
      panel.hit = drawReliability(panel.diagram, stats, size);
      panel.diagram.setAttribute('aria-label', `Reliability diagram, ${label}, epoch ${step + 1}: ECE `
        + `${fixed(stats.ece, 4)}, MCE ${fixed(stats.mce, 4)}, ${stats.bins.length} bins`);
    }
    updateBinsTable(panel.table, stats, label, step);
    panel.chart.hidden = !series.length;
    panel.chartTitle.textContent = series.length ? `ECE over epochs${stats ? `, epoch ${step + 1} marked` : ''}` : '';
    if (series.length) drawEceChart(panel.chart, series, step, size, yMax);
    Object.assign(panel.chart.dataset, {points: String(series.length), steps: series.map((p) => p.step).join(','),
      current: stats ? String(step) : ''});
    panel.chart.setAttribute('aria-label', `ECE over ${series.length} epochs, ${label}`);
  }

  hover(panel, event) {
    const rect = panel.diagram.getBoundingClientRect();
    const b = panel.stats && panel.hit ? panel.hit(event.clientX - rect.left) : -1;
    if (b < 0) {
      this.tooltip.style.display = 'none';
      return;
    }
    this.tooltip.textContent = binText(panel.stats.bins[b]);
    this.tooltip.style.display = 'block';
    this.tooltip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - this.tooltip.offsetWidth - 8)}px`;
    this.tooltip.style.top = `${event.clientY + 14}px`;
  }
}
