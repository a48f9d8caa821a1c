// The threshold slider of a one-unit binary head: its 2x2 at any threshold, recomputed in the
// browser from the epoch's score histograms (no second pass over the data).
//
// The histograms (the `matrices` answer's `scores`): T buckets of the score p(positive) over the
// true negatives, then T over the true positives, bucket b = floor(p * (T - 1)). Predicting
// positive for the buckets >= k is the 2x2 at threshold k / (T - 1): exact at those multiples of
// 1 / (T - 1) (but for a score within float rounding of the boundary), and off by at most the
// scores within one bucket width of a threshold between them. So the slider moves in steps of
// 1 / (T - 1), and at the user's own threshold the exact counts (the confusion summary) are shown.

import {fixed, h, prf} from './dom.js';

// {tn, fp, fn, tp} at threshold k / (T - 1) from the flat histograms [negatives' T, positives' T].
export function countsAt(scores, T, k) {
  const c = {tn: 0, fp: 0, fn: 0, tp: 0};
  for (let b = 0; b < T; b++) {
    if (b >= k) {
      c.fp += scores[b];
      c.tp += scores[T + b];
    } else {
      c.tn += scores[b];
      c.fn += scores[T + b];
    }
  }
  return c;
}

// The 2x2 at threshold k / (T - 1) as RunData's sparse (true, predicted, count) cells.
export function cellsAt(scores, T, k) {
  const {tn, fp, fn, tp} = countsAt(scores, T, k);
  return [[0, 0, tn], [0, 1, fp], [1, 0, fn], [1, 1, tp]].filter((cell) => cell[2] > 0).flat();
}

// {k, f1}: the bucket threshold k / (T - 1) of highest F1, ties to the highest threshold (as
// monitor.metrics.best_f1); f1 0 without positives.
export function bestF1(scores, T) {
  let best = {k: T - 1, f1: -1};
  const c = {tp: 0, fp: 0, fn: 0};
  for (let b = 0; b < T; b++) c.fn += scores[T + b];
  for (let k = T - 1; k >= 0; k--) {  // downwards: bucket k joins the predicted positives
    c.tp += scores[T + k];
    c.fn -= scores[T + k];
    c.fp += scores[k];
    const f1 = prf(c).f1 || 0;
    if (f1 > best.f1) best = {k, f1};
  }
  return best;
}

// The exact 2x2 of epoch k (the confusion summary, at the user's threshold).
export function exactCounts(data, k) {
  const m = data.dense(k);
  return {tn: m[0], fp: m[1], fn: m[2], tp: m[3]};
}

const gridValue = (k, T) => Number((k / (T - 1)).toFixed(6));

// The box beside the matrix: the slider, the user's and the best-F1 threshold, the 2x2 and its
// precision, recall and F1. onChange(value): a threshold on the grid, or null for the user's own.
export class ThresholdBox {
  constructor(onChange) {
    this.onChange = onChange;
    this.slider = h('input', {id: 'threshold', type: 'range', min: '0', max: '1', step: '0.01', value: '0.5',
      list: 'threshold-marks', 'aria-label': 'Threshold'});
    this.value = h('output', {id: 'threshold-value', for: 'threshold'});
    this.marks = h('datalist', {id: 'threshold-marks'});
    this.yours = h('button', {id: 'threshold-yours', type: 'button', class: 'text-button'});
    this.best = h('button', {id: 'threshold-best', type: 'button', class: 'text-button'});
    this.table = h('table', {id: 'threshold-counts', class: 'two-by-two'});
    this.metrics = h('p', {id: 'threshold-metrics', class: 'threshold-metrics'});
    this.note = h('p', {id: 'threshold-note', class: 'hint'});
    this.root = h('section', {id: 'threshold-box', class: 'threshold-box', hidden: ''},
      h('h2', {text: 'Threshold (predicted positive: p ≥ threshold)'}),
      h('div', {class: 'threshold-row'}, this.slider, this.value), this.marks,
      h('div', {class: 'threshold-buttons'}, this.yours, this.best), this.table, this.metrics, this.note);
    this.slider.addEventListener('input', () => this.onChange(Number(this.slider.value)));
    this.yours.addEventListener('click', () => this.onChange(null));
    this.best.addEventListener('click', () => this.onChange(Number(this.best.dataset.threshold)));
  }

  // Shows `data` (a binary RunData) at epoch index k; chosen: a threshold on the grid, or null.
  update(data, k, chosen) {
    this.root.hidden = !data || !data.binary;
    if (this.root.hidden) return;
    const T = data.numThresholds;
    const scores = data.epochs[k].scores;
    const at = chosen === null || !scores ? data.threshold : chosen;
    const exact = chosen === null || !scores;
    const counts = exact ? exactCounts(data, k) : countsAt(scores, T, Math.round(chosen * (T - 1)));
    this.slider.step = String(1 / (T - 1));
    this.slider.value = String(at);
    this.slider.disabled = !scores;
    this.value.textContent = exact ? `${data.threshold} (yours)` : String(chosen);
    this.showMarks(data, scores, T);
    this.yours.textContent = `Your threshold ${data.threshold}`;
    this.yours.disabled = exact;
    this.showTable(data, counts, {epoch: data.steps[k], threshold: at, source: exact ? 'exact' : 'histograms'});
    const {precision, recall, f1} = prf(counts);
    this.metrics.textContent = `Precision ${fixed(precision)} · Recall ${fixed(recall)} · F1 ${fixed(f1)}`;
    this.note.textContent = this.noteText(data, scores, exact, T);
  }

  showMarks(data, scores, T) {
    const best = scores ? bestF1(scores, T) : null;
    const marks = [h('option', {value: String(data.threshold), label: 'yours'})];
    this.best.hidden = !best;
    if (best) {
      const value = gridValue(best.k, T);
      this.best.dataset.threshold = String(value);
      this.best.textContent = `Best F1 ${fixed(best.f1)} at ${value}`;
      marks.push(h('option', {value: String(value), label: 'best F1'}));
    }
    this.marks.replaceChildren(...marks);
  }

  showTable(data, counts, {epoch, threshold, source}) {
    const [neg, pos] = data.names;
    const cell = (name, label) => h('td', {'data-cell': name, 'aria-label': `${label}: ${counts[name]}`},
      h('span', {class: 'cell-kind', text: name.toUpperCase()}),
      h('span', {class: 'num', text: String(counts[name])}));
    for (const name of ['tp', 'fp', 'fn', 'tn']) this.table.dataset[name] = String(counts[name]);
    Object.assign(this.table.dataset, {epoch: String(epoch), threshold: String(threshold), source});
    this.table.replaceChildren(
      h('caption', {text: `Epoch ${epoch + 1}, threshold ${threshold}`}),
      h('tr', {}, h('th', {text: 'true \\ predicted'}), h('th', {text: neg}), h('th', {text: pos})),
      h('tr', {}, h('th', {text: neg}), cell('tn', 'true negatives'), cell('fp', 'false positives')),
      h('tr', {}, h('th', {text: pos}), cell('fn', 'false negatives'), cell('tp', 'true positives')));
  }

  noteText(data, scores, exact, T) {
    if (!scores) return 'No score histograms for this epoch: the exact counts at your threshold only.';
    const width = gridValue(1, T);
    if (exact) {
      return `Exact counts at your threshold ${data.threshold} (the confusion summary). Move the slider to `
        + `see the 2×2 at another threshold, from the score histograms (${T} buckets).`;
    }
    return `Counts from the score histograms (${T} buckets of width ${width}), not a second pass: exact at `
      + `multiples of ${width}, but for a score within float rounding of the threshold; a threshold between `
      + `them would be within one bucket width (${width}). Your threshold's exact counts: "Your threshold".`;
  }
}
