// Fetching and caching the plugin's data; per-epoch numbers derived from the sparse counts.
// Every URL is relative: the page's <base> points at /data/plugin/training_monitor/.

import {cellsAt} from './threshold.js';

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) {
    const error = new Error(`${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

const query = (params) => new URLSearchParams(params).toString();

// A `matrices` epoch's `cells`: (true, predicted, count) triples of little-endian int32, base64
// (or already numbers: a binary run's 2x2 at another threshold, made here).
export function decodeCells(text) {
  if (typeof text !== 'string') return Int32Array.from(text);
  const bytes = atob(text);
  const view = new DataView(new ArrayBuffer(bytes.length));
  for (let i = 0; i < bytes.length; i++) view.setUint8(i, bytes.charCodeAt(i));
  const cells = new Int32Array(bytes.length / 4);
  for (let i = 0; i < cells.length; i++) cells[i] = view.getInt32(4 * i, true);
  return cells;
}

// {runs: [{run, split, head, binary, classes, epochs, last_step, last_wall_time, mistakes, calibration, alerts,
//   explanations}],
//  limits: {subsetAbove, subsetSizes, tableMax}}: also the live check, one small request.
export async function listRuns() {
  return getJson('./runs');
}

// Adds an answer's `alerts` ([{step, alerts: [...]}]) to data.alerts (step -> the alerts said at its
// end; a step sent again replaces its own). Returns how many steps were new.
function addAlerts(data, alerts = []) {
  let added = 0;
  for (const entry of alerts) {
    if (!data.alerts.has(entry.step)) added += 1;
    data.alerts.set(entry.step, entry.alerts);
  }
  return added;
}

// The epoch index shown for `step`: that step, else the last one before it, else the first.
function indexAtStep(steps, step) {
  let best = 0;
  for (let k = 0; k < steps.length; k++) if (steps[k] <= step) best = k;
  return best;
}

// One run's matrices: class names and, per epoch, the nonzero cells. Derived arrays are
// computed once per epoch (row sums, diagonal) and the dense matrix on demand. A binary run
// (`binary`) also has its user's `threshold`, `numThresholds` (T) and each epoch's `scores`; an
// epoch with calibration statistics its `calibration` (the flat (3, B) rows); `alerts` maps a step
// to the alerts said at its end.
export class RunData {
  constructor(run, split, payload) {
    this.run = run;
    this.split = split;
    this.route = 'matrices';
    this.threshold = payload.threshold ?? null;
    this.numThresholds = payload.num_thresholds ?? null;
    this.binary = this.numThresholds !== null && payload.class_names.length === 2;
    this.names = payload.class_names;
    this.n = this.names.length;
    this.epochs = [];
    this.steps = [];
    this.alerts = new Map();
    this._rows = new Map();
    this._dense = new Map();  // a few recent dense matrices (4 MB each at 1,000 classes)
    this.maxSupport = 1;
    this.widened = {};  // scale key -> the step whose arrival widened it (maxSupport, maxAbsDiff)
    this.append(payload.epochs, payload.alerts);
    this.widened = {};  // the first load sets the scales; only later epochs widen them
  }

  get lastStep() {
    return this.steps.length ? this.steps[this.steps.length - 1] : -1;
  }

  // Adds the epochs after the last one held (a `matrices?since=` answer) and its alerts, updating
  // the fixed scales only upwards: maxSupport, and maxAbsDiff once computed. Returns how many epochs
  // and steps with alerts were added.
  append(epochs, alerts = []) {
    const start = performance.now();
    const fresh = epochs.filter((e) => e.step > this.lastStep).sort((x, y) => x.step - y.step);
    const first = this.epochs.length;
    for (const e of fresh) {
      const scores = e.scores ? Int32Array.from(e.scores) : null;
      const calibration = e.calibration ? Float64Array.from(e.calibration) : null;
      this.epochs.push({step: e.step, cells: decodeCells(e.cells), scores, calibration});
      this.steps.push(e.step);
    }
    for (let k = first; k < this.epochs.length; k++) {
      const rows = this.rowSums(k);
      let max = this.maxSupport;
      for (let i = 0; i < this.n; i++) max = Math.max(max, rows[i]);
      if (max > this.maxSupport) [this.maxSupport, this.widened.maxSupport] = [max, this.steps[k]];
      if (this._maxAbsDiff !== undefined && k > 0) {
        const d = this._diffBetween(k);
        if (d > this._maxAbsDiff) [this._maxAbsDiff, this.widened.maxAbsDiff] = [d, this.steps[k]];
      }
    }
    this.lastAppendMs = performance.now() - start;
    return fresh.length + addAlerts(this, alerts);
  }

  rowSums(k) {
    if (!this._rows.has(k)) {
      const rows = new Float64Array(this.n);
      const diag = new Float64Array(this.n);
      const cells = this.epochs[k].cells;
      for (let c = 0; c < cells.length; c += 3) {
        rows[cells[c]] += cells[c + 2];
        if (cells[c] === cells[c + 1]) diag[cells[c]] = cells[c + 2];
      }
      this._rows.set(k, {rows, diag});
    }
    return this._rows.get(k).rows;
  }

  recall(k) {
    const rows = this.rowSums(k);
    const {diag} = this._rows.get(k);
    const out = new Float64Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = rows[i] > 0 ? diag[i] / rows[i] : NaN;
    return out;
  }

  accuracy(k) {
    const rows = this.rowSums(k);
    const {diag} = this._rows.get(k);
    let right = 0;
    let all = 0;
    for (let i = 0; i < this.n; i++) {
      right += diag[i];
      all += rows[i];
    }
    return all > 0 ? right / all : NaN;
  }

  dense(k) {
    if (!this._dense.has(k)) {
      const m = new Int32Array(this.n * this.n);
      const cells = this.epochs[k].cells;
      for (let c = 0; c < cells.length; c += 3) m[cells[c] * this.n + cells[c + 1]] = cells[c + 2];
      this._dense.set(k, m);
      if (this._dense.size > 6) this._dense.delete(this._dense.keys().next().value);
    }
    return this._dense.get(k);
  }

  // Indices of the `count` classes with the most off-diagonal mass at epoch k (sorted by index).
  mostConfused(k, count) {
    const mass = new Float64Array(this.n);
    const cells = this.epochs[k].cells;
    for (let c = 0; c < cells.length; c += 3) {
      if (cells[c] !== cells[c + 1]) {
        mass[cells[c]] += cells[c + 2];
        mass[cells[c + 1]] += cells[c + 2];
      }
    }
    const order = Array.from(mass.keys()).sort((a, b) => mass[b] - mass[a] || a - b);
    return order.slice(0, Math.min(count, this.n)).sort((a, b) => a - b);
  }

  // Largest |row share now - the epoch before| over every cell and epoch: the diff view's fixed
  // scale (widened by append() when a new epoch exceeds it).
  get maxAbsDiff() {
    if (this._maxAbsDiff === undefined) {
      let max = 0;
      for (let k = 1; k < this.epochs.length; k++) max = Math.max(max, this._diffBetween(k));
      this._maxAbsDiff = max;
    }
    return this._maxAbsDiff;
  }

  // Largest |row share at k - at k - 1| over the cells, from the sparse cells: a cell absent at
  // one of the two epochs has share 0 there.
  _diffBetween(k) {
    let max = 0;
    const before = new Map();
    const rowsBefore = this.rowSums(k - 1);
    const cellsBefore = this.epochs[k - 1].cells;
    for (let c = 0; c < cellsBefore.length; c += 3) {
      const t = cellsBefore[c];
      before.set(t * this.n + cellsBefore[c + 1], rowsBefore[t] > 0 ? cellsBefore[c + 2] / rowsBefore[t] : 0);
    }
    const rows = this.rowSums(k);
    const cells = this.epochs[k].cells;
    for (let c = 0; c < cells.length; c += 3) {
      const key = cells[c] * this.n + cells[c + 1];
      const share = rows[cells[c]] > 0 ? cells[c + 2] / rows[cells[c]] : 0;
      max = Math.max(max, Math.abs(share - (before.get(key) ?? 0)));
      before.delete(key);
    }
    for (const share of before.values()) max = Math.max(max, share);
    return max;
  }

  // The `count` largest off-diagonal cells at epoch k between classes with shown[c] set, by share
  // of the row (or by count): [{t, p, count, share}], largest first.
  topConfusions(k, count, shown, byCount = false) {
    const rows = this.rowSums(k);
    const cells = this.epochs[k].cells;
    const top = [];
    for (let c = 0; c < cells.length; c += 3) {
      const [t, p, n] = [cells[c], cells[c + 1], cells[c + 2]];
      if (t === p || !shown[t] || !shown[p]) continue;
      const item = {t, p, count: n, share: rows[t] > 0 ? n / rows[t] : 0};
      item.score = byCount ? n + item.share : item.share + n * 1e-9;
      if (top.length === count && item.score <= top[count - 1].score) continue;
      top.splice(count - 1, 1, item);
      top.sort((a, b) => b.score - a.score);
    }
    return top;
  }

  indexAtStep(step) {
    return indexAtStep(this.steps, step);
  }

  // A binary run as it is at threshold k / (T - 1): every epoch's 2x2 from its score histograms
  // (an epoch without them keeps its exact counts); `fromHistograms` tells the two apart. Kept
  // until the threshold or the epochs change.
  atThreshold(k) {
    const key = `${k}:${this.epochs.length}`;
    if (this._atKey !== key) {
      const epochs = this.epochs.map((e) => ({step: e.step,
        cells: e.scores ? cellsAt(e.scores, this.numThresholds, k) : Array.from(e.cells)}));
      this._at = Object.assign(new RunData(this.run, this.split, {class_names: this.names, epochs}),
        {exact: this, thresholdK: k, fromHistograms: this.epochs.map((e) => Boolean(e.scores))});
      this._atKey = key;
    }
    return this._at;
  }
}

// One multi-label run: label names and, per epoch, {step, count, exact, tp, fp, fn, tn (per
// label), cooccurrence (flat (missed, added, count) triples, or null), threshold}; `alerts` as RunData's.
export class MultiLabelData {
  constructor(run, split, payload) {
    Object.assign(this, {run, split, route: 'multilabel', multiLabel: true, names: payload.class_names,
      threshold: payload.threshold, epochs: [], steps: [], alerts: new Map(), maxCooccurrence: 1, widened: {}});
    this.n = this.names.length;
    this.append(payload.epochs, payload.alerts);
    this.widened = {};
  }

  get lastStep() {
    return this.steps.length ? this.steps[this.steps.length - 1] : -1;
  }

  // Adds the epochs after the last one held and its alerts; the co-occurrence colour scale only
  // widens. Returns how many epochs and steps with alerts were added.
  append(epochs, alerts = []) {
    const start = performance.now();
    const fresh = epochs.filter((e) => e.step > this.lastStep).sort((x, y) => x.step - y.step);
    for (const e of fresh) {
      const cooccurrence = e.cooccurrence ? Int32Array.from(e.cooccurrence.flat()) : null;
      this.epochs.push({step: e.step, count: e.count, exact: e.exact, threshold: e.threshold, cooccurrence,
        ...Object.fromEntries(['tp', 'fp', 'fn', 'tn'].map((key) => [key, Int32Array.from(e[key])]))});
      this.steps.push(e.step);
      let max = this.maxCooccurrence;
      for (let c = 2; cooccurrence && c < cooccurrence.length; c += 3) max = Math.max(max, cooccurrence[c]);
      if (max > this.maxCooccurrence) [this.maxCooccurrence, this.widened.maxCooccurrence] = [max, e.step];
    }
    this.lastAppendMs = performance.now() - start;
    return fresh.length + addAlerts(this, alerts);
  }

  indexAtStep(step) {
    return indexAtStep(this.steps, step);
  }
}

const runCache = new Map();
const runKey = (run, split) => `${run}\u0000${split}`;

// One run's matrices (a multi-label run's counts), cached; when the run list says it has epochs
// after the cached ones (`lastStep`), only those are fetched and appended (`matrices?since=`).
export async function loadRun(run, split, lastStep = -1, head = 'single_label') {
  const multi = head === 'multi_label';
  const key = `${runKey(run, split)}\u0000${multi}`;
  if (!runCache.has(key)) {
    const Data = multi ? MultiLabelData : RunData;
    runCache.set(key, getJson(`./${multi ? 'multilabel' : 'matrices'}?${query({run, split})}`)
      .then((p) => new Data(run, split, p)));
  }
  try {
    const data = await runCache.get(key);
    if (lastStep > data.lastStep) await appendNew(data);
    return data;
  } catch (error) {
    runCache.delete(key);
    throw error;
  }
}

// Fetches the epochs of `data`'s run after its last one and appends them; resolves to how many
// (one request; concurrent calls for one run share it).
export function appendNew(data) {
  if (!data._appending) {
    data._appending = getJson(`./${data.route}?${query({run: data.run, split: data.split, since: data.lastStep})}`)
      .then((p) => data.append(p.epochs, p.alerts))
      .finally(() => { data._appending = null; });
  }
  return data._appending;
}

// Forgets a cached run (the run list says it went back: a run written again from scratch).
export function forgetRun(run, split) {
  for (const multi of [false, true]) runCache.delete(`${runKey(run, split)}\u0000${multi}`);
}

const mistakeCache = new Map();

// The run's most confident mistakes at `step` (null when it has none recorded; not cached, as
// the newest epoch's mistakes may not be loaded by TensorBoard yet).
export async function loadMistakes(run, split, step) {
  const key = `${run}\u0000${split}\u0000${step}`;
  if (!mistakeCache.has(key)) {
    mistakeCache.set(key, getJson(`./mistakes?${query({run, split, step})}`)
      .then((p) => p.mistakes)
      .catch((error) => {
        mistakeCache.delete(key);
        if (error.status === 404) return null;
        throw error;
      }));
  }
  return mistakeCache.get(key);
}

export const mistakeImageUrl = (run, split, step, index) =>
  `./mistake_image?${query({run, split, step, index})}`;

const explanationCache = new Map();

// The Grad-CAM maps of the run's mistakes at `step`: {layer, score, map_size, maps, records:
// [{index, true, predicted, confidence, position}]}, or null when that epoch has none.
export async function loadExplanations(run, split, step) {
  const key = `${run}\u0000${split}\u0000${step}`;
  if (!explanationCache.has(key)) {
    explanationCache.set(key, getJson(`./explanations?${query({run, split, step})}`)
      .catch((error) => {
        explanationCache.delete(key);
        if (error.status === 404) return null;
        throw error;
      }));
  }
  return explanationCache.get(key);
}

export const explanationImageUrl = (run, split, step, index, map) =>
  `./explanation_image?${query({run, split, step, index, map})}`;
