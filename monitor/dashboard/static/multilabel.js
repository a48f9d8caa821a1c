// The multi-label view of one epoch: exact-match and Hamming accuracy, a table of every label's
// counts and scores (sortable), and the co-occurrence of errors in one image (the label missed ×
// the label added) as raw counts. A multi-label head has no confusion matrix (an image has any
// number of labels, each a yes/no of its own), so none is drawn, row-normalised or not.

import {sequential, sqrtPos} from './colors.js';
import {fixed, h, pct, prf} from './dom.js';
import {drawGrid} from './heatmap.js';

const COLUMNS = [['index', 'Label'], ['support', 'Support'], ['tp', 'TP'], ['fp', 'FP'], ['fn', 'FN'],
  ['tn', 'TN'], ['precision', 'Precision'], ['recall', 'Recall'], ['f1', 'F1']];
const RATIOS = new Set(['precision', 'recall', 'f1']);

// Every label's numbers at epoch index k: [{index, name, support, tp, fp, fn, tn, precision,
// recall, f1}], support = TP + FN (the images that have the label); NaN where undefined.
export function labelRows(data, k) {
  const e = data.epochs[k];
  return data.names.map((name, i) => {
    const c = {tp: e.tp[i], fp: e.fp[i], fn: e.fn[i], tn: e.tn[i]};
    return {index: i, name, support: c.tp + c.fn, ...c, ...prf(c)};
  });
}

// Exact-match accuracy (the images with every label right) and Hamming accuracy (the share of
// right label decisions, TP + TN over every image's every label).
export function accuracies(data, k) {
  const e = data.epochs[k];
  let right = 0;
  let all = 0;
  for (let i = 0; i < data.n; i++) {
    right += e.tp[i] + e.tn[i];
    all += e.tp[i] + e.tn[i] + e.fp[i] + e.fn[i];
  }
  return {exact: e.count > 0 ? e.exact / e.count : NaN, hamming: all > 0 ? right / all : NaN};
}

// Sorted by `key` (dir 1 ascending, -1 descending); NaN last either way, ties in label order.
function sortRows(rows, {key, dir}) {
  const value = (r) => (Number.isNaN(r[key]) ? Infinity * dir : r[key]);
  return [...rows].sort((x, y) => dir * (value(x) - value(y)) || x.index - y.index);
}

export class MultiLabelView {
  constructor(tooltip) {
    this.tooltip = tooltip;
    this.sort = {key: 'index', dir: 1};
    this.summary = h('div', {id: 'ml-summary', class: 'ml-summary', 'aria-live': 'polite'});
    this.table = h('table', {id: 'ml-labels', class: 'ml-table'});
    this.gridTitle = h('h2', {id: 'ml-cooccurrence-title'});
    this.gridNote = h('p', {class: 'hint'});
    this.canvas = h('canvas', {id: 'ml-cooccurrence', class: 'cooccurrence', role: 'img'});
    this.tableBox = h('section', {class: 'ml-table-box'}, this.table);
    this.gridBox = h('section', {class: 'ml-grid-box'}, this.gridTitle, this.gridNote, this.canvas);
    this.root = h('div', {id: 'multilabel', class: 'multilabel', hidden: ''}, this.summary,
      h('div', {class: 'ml-body'}, this.tableBox, this.gridBox));
    this.canvas.addEventListener('mousemove', (event) => this.hover(event));
    this.canvas.addEventListener('mouseleave', () => { this.tooltip.style.display = 'none'; });
  }

  // Shows epoch index k of `data` (a MultiLabelData) in about width × height CSS pixels.
  show(data, k, width, height) {
    this.root.hidden = false;
    this.root.style.width = `${Math.floor(width)}px`;
    [this.data, this.k] = [data, k];
    this.showSummary(data, k);
    this.showTable(data, k);
    const beside = width - this.tableBox.offsetWidth - 32;  // the heatmap beside the table, else below it
    const gridWidth = Math.floor(beside >= 300 ? beside : width);
    this.gridBox.style.width = `${gridWidth}px`;
    this.showGrid(data, k, gridWidth, height);
  }

  hide() {
    this.root.hidden = true;
  }

  showSummary(data, k) {
    const e = data.epochs[k];
    const {exact, hamming} = accuracies(data, k);
    Object.assign(this.summary.dataset, {epoch: String(data.steps[k]), exact: String(e.exact),
      count: String(e.count), exactShare: fixed(exact, 6), hamming: fixed(hamming, 6)});
    this.summary.replaceChildren(
      h('span', {class: 'ml-figure', text: `Exact match ${pct(exact)}`}),
      h('span', {class: 'hint', text: ` (${e.exact} of ${e.count} images with every label right)`}),
      h('span', {class: 'ml-figure', text: ` · Hamming accuracy ${pct(hamming)}`}),
      h('span', {class: 'hint', text: ` (label decisions right) · ${data.n} labels · threshold ${e.threshold}`}));
  }

  showTable(data, k) {
    const rows = sortRows(labelRows(data, k), this.sort);
    const head = h('tr', {}, ...COLUMNS.map(([key, text]) => this.headerCell(key, text)));
    const body = rows.map((r) => h('tr', {'data-label': String(r.index), 'data-name': r.name,
      ...Object.fromEntries(COLUMNS.slice(1).map(([key]) => [`data-${key}`,
        RATIOS.has(key) ? fixed(r[key], 6).replace('–', 'NaN') : String(r[key])]))},
    h('th', {scope: 'row', class: 'name', text: r.name, title: r.name}),
    ...COLUMNS.slice(1).map(([key]) => h('td', {class: 'num',
      text: RATIOS.has(key) ? fixed(r[key]) : String(r[key])}))));
    this.table.dataset.epoch = String(data.steps[k]);
    this.table.replaceChildren(h('caption', {text: `Per label, epoch ${data.steps[k] + 1}`}), head, ...body);
  }

  headerCell(key, text) {
    const sorted = this.sort.key === key;
    const button = h('button', {type: 'button', class: 'sort', 'data-sort': key,
      text: sorted ? `${text} ${this.sort.dir > 0 ? '▲' : '▼'}` : text});
    button.addEventListener('click', () => {
      this.sort = {key, dir: sorted ? -this.sort.dir : 1};
      this.showTable(this.data, this.k);
    });
    return h('th', {scope: 'col', ...(sorted ? {'aria-sort': this.sort.dir > 0 ? 'ascending' : 'descending'} : {})},
      button);
  }

  showGrid(data, k, width, height) {
    const e = data.epochs[k];
    const step = data.steps[k];
    this.gridTitle.textContent = `Errors in the same image, epoch ${step + 1}: label missed (row) × label added `
      + '(column), raw counts, not row-normalised';
    this.canvas.hidden = !e.cooccurrence;
    this.layout = null;
    if (!e.cooccurrence) {
      this.gridNote.textContent = 'No co-occurrence counts were recorded for this epoch.';
      return;
    }
    const n = data.n;
    this.counts = new Int32Array(n * n);
    for (let c = 0; c < e.cooccurrence.length; c += 3) {
      this.counts[e.cooccurrence[c] * n + e.cooccurrence[c + 1]] = e.cooccurrence[c + 2];
    }
    const max = data.maxCooccurrence;
    const colors = Int16Array.from(this.counts, (v) => (v === 0 ? 0 : sequential.index(sqrtPos(v, max))));
    this.layout = drawGrid(this.canvas, {rows: n, cols: n, rowLabels: data.names, colLabels: data.names,
      square: true, scale: sequential, colors, width, height,
      text: (i, j) => (this.counts[i * n + j] ? String(this.counts[i * n + j]) : null),
      xTitle: 'Label added (a false positive)', yTitle: 'Label missed (a false negative)'});
    this.canvas.setAttribute('aria-label', `Co-occurrence of errors at epoch ${step + 1}: label missed × label `
      + `added in the same image, ${n} labels, raw counts`);
    Object.assign(this.canvas.dataset, {epoch: String(step), cells: String(e.cooccurrence.length / 3)});
    this.gridNote.textContent = 'An image missing label i and given label j counts once in row i, column j. '
      + 'Colour: square root of the count, 0 to the largest over the epochs.';
  }

  hover(event) {
    const rect = this.canvas.getBoundingClientRect();
    const hit = this.layout && this.layout.hit(event.clientX - rect.left, event.clientY - rect.top);
    if (!hit) {
      this.tooltip.style.display = 'none';
      return;
    }
    const [i, j] = hit;
    const count = this.counts[i * this.data.n + j];
    this.tooltip.textContent = `missed ${this.data.names[i]}, added ${this.data.names[j]}: ${count} image`
      + `${count === 1 ? '' : 's'}`;
    this.tooltip.style.display = 'block';
    this.tooltip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - this.tooltip.offsetWidth - 8)}px`;
    this.tooltip.style.top = `${event.clientY + 14}px`;
  }
}

// The `count` labels of lowest F1 at epoch index k (undefined F1 left out): [{name, f1}].
export function lowestF1(data, k, count) {
  return labelRows(data, k).filter((r) => !Number.isNaN(r.f1)).sort((x, y) => x.f1 - y.f1 || x.index - y.index)
    .slice(0, count);
}
