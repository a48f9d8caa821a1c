// The Training monitor dashboard: every epoch's confusion matrix on one slider (a binary head's
// with a threshold slider, threshold.js; a multi-label head's counts instead, multilabel.js), the
// calibration view (calibration.js) and the alarms on the slider (alarms.js).
// TensorBoard loads this module in an iframe and calls render().

import {AlarmMarkers} from './alarms.js';
import {CalibrationView, calibrationAt, calibrationFigures} from './calibration.js';
import {drawLegend, diverging, divPos, recallScale, sequential, sqrtPos} from './colors.js';
import {appendNew, explanationImageUrl, listRuns, loadExplanations, loadMistakes, loadRun, mistakeImageUrl}
  from './data.js';
import {h, pct} from './dom.js';
import {HeatMaps, overlayCanvas} from './explanations.js';
import {drawGrid} from './heatmap.js';
import {Live, POLL_MS} from './live.js';
import {lowestF1, MultiLabelView} from './multilabel.js';
import {ThresholdBox} from './threshold.js';

const TOP_CONFUSIONS = 3;  // outlined on the matrix
const LISTED = 8;  // listed beside it
const PLAY_MS = 600;
const SIDE_MIN = 300;  // px: the sidebar's least width; it takes whatever the matrices leave

const state = {
  runs: [], limits: null, a: null, b: null, k: 0, view: 'matrix', mode: 'normalized', subset: 'auto',
  selected: null, playing: null, layouts: [],
  threshold: null,  // a binary run's threshold on the slider; null: the user's own (exact counts)
  heatmap: 'off',  // the mistakes' heat maps: 'off', 'predicted' or 'true' (kept across cells and epochs)
};
const timings = {firstMatrixMs: null, lastRedrawMs: null, lastCheckMs: null, lastAppendRedrawMs: null,
  lastAppendAt: null};
const el = {};
const live = new Live(refresh);
let resolveReady;

// Handles for the tests and bench/dashboard.py, which import this very module into the page
// (the same URL gives the same module instance): ready resolves once render() has drawn the
// first matrix, or said why it cannot.
export const handles = {
  ready: new Promise((resolve) => { resolveReady = resolve; }),
  timings,
  selectCell: (t, p) => selectCell(0, t, p),
  setEpoch: (k) => setEpoch(k),
  setThreshold: (value) => setThreshold(value),
  // Live updates: its counters, a check now (resolves when done), the fallback poll's period.
  live: () => ({...live.stats, pollMs: live.pollMs}),
  checkNow: () => live.now('handle').then(() => ({...timings})),
  pollEvery: (ms) => live.setPollMs(ms),
  // Where the cell (true t, predicted p) of a panel is, in CSS pixels from the canvas' top left.
  cellCenter: (panel, t, p) => {
    const layout = state.layouts[panel];
    const i = layout ? layout.classes.indexOf(t) : -1;
    const j = layout ? layout.classes.indexOf(p) : -1;
    return i >= 0 && j >= 0 ? layout.cellCenter(i, j) : null;
  },
};

const runLabel = (r) => `${r.run} · ${r.split}`;

export async function render() {
  document.head.append(h('link', {rel: 'stylesheet', href: './static/dashboard.css'}));
  buildPage();
  try {
    ({runs: state.runs, limits: state.limits} = await listRuns());
  } catch (error) {
    showMessage(`Cannot list the runs: ${error.message}`);
    resolveReady();
    return;
  }
  live.start();  // from here on, new epochs and runs show as they are written
  if (!state.runs.length) {
    showMessage('No confusion matrices yet. Train with the monitoring suite (python train.py --model dropout) '
      + 'and they appear here every epoch.');
    resolveReady();
    return;
  }
  await showFirstRun();
  resolveReady();
}

async function showFirstRun() {
  fillRunPickers();
  await chooseRun(0, state.runs.findIndex((r) => r.split === 'validation'));
  timings.firstMatrixMs = performance.now();
}

const runKey = (r) => `${r.run}\u0000${r.split}`;
const listed = (data) => state.runs.find((r) => r.run === data.run && r.split === data.split);

// The live check (live.js calls it: on TensorBoard's reload messages and every POLL_MS while
// visible): one request for the run list; only when a shown run has epochs after the ones held
// are those fetched (one more request each) and drawn. The user's place is kept: the run, compare
// run, view, values, classes and selected cell; the slider follows only if it was at the newest.
async function refresh() {
  let busy = performance.now();
  const pending = listRuns();
  busy = performance.now() - busy;
  const {runs} = await pending;
  const start = performance.now();
  const changed = runs.length !== state.runs.length || runs.some((r, i) => runKey(r) !== runKey(state.runs[i]));
  state.runs = runs;
  if (changed && state.a) fillRunPickers();
  if (state.a) showDamage([state.a, state.b]);
  const behind = [...new Set([state.a, state.b])].filter((d) => d && (listed(d)?.last_step ?? -1) > d.lastStep);
  timings.lastCheckMs = busy + performance.now() - start;
  if (changed && !state.a && runs.length) {
    showMessage('');
    await showFirstRun();
  } else if (behind.length) {
    await showNewEpochs(behind);
  }
}

async function showNewEpochs(behind) {
  const a = state.a;
  const [k, wasNewest] = [state.k, state.k === a.epochs.length - 1];
  const added = await Promise.all(behind.map(appendNew));
  if (!added.some((n) => n > 0)) return;
  const start = performance.now();
  const follows = state.a === a && wasNewest && state.k === k;
  if (follows) state.k = a.epochs.length - 1;
  redraw();
  // the main-thread time of showing them: appending (decoding the cells, row sums) and redrawing
  timings.lastAppendRedrawMs = performance.now() - start + behind.reduce((ms, d) => ms + d.lastAppendMs, 0);
  timings.lastAppendAt = Date.now();
  if (follows && state.selected) showMistakes(state.selected.panel, state.selected.t, state.selected.p);
}

function buildPage() {
  el.run = h('select', {id: 'run', 'aria-label': 'Run'});
  el.compare = h('select', {id: 'compare-run', 'aria-label': 'Compare with'});
  el.view = h('select', {id: 'view', 'aria-label': 'View'});
  for (const [value, text] of [['matrix', 'Confusion matrix'], ['diff', 'Change since previous epoch'],
    ['recall', 'Per-class recall over epochs'], ['calibration', 'Calibration']]) {
    el.view.append(h('option', {value, text}));
  }
  el.mode = h('select', {id: 'mode', 'aria-label': 'Values'});
  for (const [value, text] of [['normalized', 'Row-normalised'], ['counts', 'Counts']]) {
    el.mode.append(h('option', {value, text}));
  }
  el.subset = h('select', {id: 'classes', 'aria-label': 'Classes shown'});
  el.play = h('button', {id: 'play', type: 'button', 'aria-label': 'Play', text: '▶'});
  el.slider = h('input', {id: 'epoch', type: 'range', min: '0', max: '0', value: '0', step: '1',
    'aria-label': 'Epoch'});
  el.epochLabel = h('span', {id: 'epoch-label', 'aria-live': 'polite'});
  el.live = h('span', {id: 'live-status', class: 'live',
    title: `New epochs and runs show as they are written (checked every ${POLL_MS / 1000} s while this tab `
      + "is visible, and at once on TensorBoard's reload). At the newest epoch the slider follows them; "
      + 'moved back, it stays.'});
  const field = (label, control, single) => h('label', {class: single ? 'field single-only' : 'field'},
    h('span', {text: label}), control);
  el.toolbar = h('div', {class: 'toolbar'},
    field('Run', el.run), field('Compare with', el.compare, true), field('View', el.view, true),
    field('Values', el.mode, true), field('Classes', el.subset, true));
  for (const control of [el.mode, el.subset]) control.parentElement.classList.add('matrix-only');
  el.alarms = new AlarmMarkers((k) => setEpoch(k));
  el.epochBar = h('div', {class: 'epochbar'}, el.play, h('div', {class: 'slider-box'}, el.alarms.track, el.slider),
    el.epochLabel, el.live, h('span', {class: 'hint', text: '← → step · Home/End · space plays'}));
  el.panels = h('div', {class: 'panels'});
  el.legend = h('canvas', {id: 'legend', class: 'legend', 'aria-hidden': 'true'});
  el.legendTitle = h('div', {class: 'legend-title'});
  el.tooltip = h('div', {id: 'tooltip', class: 'tooltip', role: 'tooltip'});
  el.tables = [h('table', {id: 'cell-values'}), h('table', {id: 'cell-values-compare'})];
  el.listTitle = h('h2');
  el.list = h('ol', {id: 'top-confusions', class: 'top-list'});
  el.mistakes = h('section', {id: 'mistakes', class: 'mistakes', 'aria-live': 'polite'},
    h('p', {class: 'hint', text: 'Click an off-diagonal cell to see its most confident mistakes.'}));
  el.message = h('div', {class: 'message'});
  el.damaged = h('div', {id: 'damaged', class: 'message damaged', role: 'status'});
  el.threshold = new ThresholdBox(setThreshold);
  el.multi = new MultiLabelView(el.tooltip);
  el.calibration = new CalibrationView(el.tooltip);
  el.side = h('aside', {class: 'side'}, h('div', {class: 'side-info'}, el.threshold.root,
    h('div', {class: 'legend-box'}, el.legendTitle, el.legend), h('section', {class: 'listed'}, el.listTitle,
      el.list)), el.mistakes);
  el.main = h('div', {class: 'main'}, el.multi.root, el.calibration.root, el.panels, el.side);
  el.app = h('div', {class: 'app'}, el.toolbar, el.epochBar, el.alarms.list, el.message, el.damaged, el.main,
    h('div', {class: 'visually-hidden'}, ...el.tables), el.tooltip);
  document.body.append(el.app);

  el.run.addEventListener('change', () => chooseRun(0, Number(el.run.value)));
  el.compare.addEventListener('change', () => chooseRun(1, el.compare.value === '' ? -1 : Number(el.compare.value)));
  el.view.addEventListener('change', () => { state.view = el.view.value; redraw(); });
  el.mode.addEventListener('change', () => { state.mode = el.mode.value; redraw(); });
  el.subset.addEventListener('change', () => { state.subset = el.subset.value; redraw(); });
  el.slider.addEventListener('input', () => setEpoch(Number(el.slider.value)));
  el.play.addEventListener('click', togglePlay);
  document.addEventListener('keydown', onKey);
  let pending = false;
  window.addEventListener('resize', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; redraw(); });
  });
}

// What was skipped of the shown runs' damaged event files (the plugin reads on past the damage,
// which TensorBoard's own tabs do not until the file is repaired), as text.
function showDamage(runs) {
  const lines = [...new Set(runs)].filter(Boolean).map((d) => [d, listed(d)?.damaged])
    .filter(([, text]) => text)
    .map(([d, text]) => `${runLabel(d)}: damaged event file, every intact epoch shown (${text}). ` +
      'TensorBoard\'s other tabs stop at the damage until `python -m monitor.repair <run folder>` rewrites the file.');
  el.damaged.textContent = lines.join('\n');
}

function showMessage(text) {
  el.message.textContent = text;
  el.message.hidden = !text;
}

// The run pickers, from state.runs (again when the list grows: the chosen runs stay chosen). A
// multi-label run has no matrix to compare: it is not offered as one, nor compared with one.
function fillRunPickers() {
  const at = (data) => (data ? state.runs.indexOf(listed(data)) : -1);
  el.run.replaceChildren(...state.runs.map((r, i) => h('option', {value: String(i), text: runLabel(r)})));
  el.compare.replaceChildren(h('option', {value: '', text: 'none'}),
    ...state.runs.map((r, i) => [r, i]).filter(([r]) => r.head !== 'multi_label')
      .map(([r, i]) => h('option', {value: String(i), text: runLabel(r)})));
  if (at(state.a) >= 0) el.run.value = String(at(state.a));
  el.compare.value = at(state.b) >= 0 ? String(at(state.b)) : '';
  el.compare.disabled = Boolean(state.a && state.a.multiLabel);
}

async function chooseRun(panel, index) {
  if (panel === 1 && index < 0) {
    state.b = null;
    redraw();
    return;
  }
  const r = state.runs[Math.max(index, 0)];
  showMessage(`Loading ${runLabel(r)}…`);
  let data;
  try {
    data = await loadRun(r.run, r.split, r.last_step, r.head);
  } catch (error) {
    showMessage(`Cannot load ${runLabel(r)}: ${error.message}`);
    return;
  }
  showMessage('');
  if (panel === 0) {
    const step = state.a ? state.a.steps[state.k] : Infinity;
    state.a = data;
    el.run.value = String(Math.max(index, 0));
    state.k = Number.isFinite(step) ? data.indexAtStep(step) : data.epochs.length - 1;
    state.selected = null;
    state.threshold = null;
    el.compare.disabled = Boolean(data.multiLabel);  // nothing to compare a multi-label run with
    if (data.multiLabel) [state.b, el.compare.value] = [null, ''];
    fillSubsets(data);
    el.mistakes.replaceChildren(h('p', {class: 'hint',
      text: 'Click an off-diagonal cell to see its most confident mistakes.'}));
  } else if (!data.multiLabel) {
    state.b = data;
  }
  redraw();
}

// The Classes menu of a run: all, or the most confused of a large run.
function fillSubsets(data) {
  if (data.multiLabel) return;
  const {subsetAbove, subsetSizes} = state.limits;
  const big = data.n > subsetAbove;
  el.subset.replaceChildren(
    h('option', {value: 'auto', text: big ? `${subsetSizes[1]} most confused` : `all ${data.n}`}),
    ...(big ? subsetSizes.filter((s) => s !== subsetSizes[1])
      .map((s) => h('option', {value: String(s), text: `${s} most confused`})) : []),
    ...(big ? [h('option', {value: 'all', text: `all ${data.n}`})] : []));
  el.subset.disabled = !big;
  state.subset = 'auto';
  data._shownKey = null;  // the most confused classes: chosen again, at the newest epoch
}

function setEpoch(k) {
  if (!state.a) return;
  state.k = Math.max(0, Math.min(state.a.epochs.length - 1, k));
  const start = performance.now();
  redraw();
  timings.lastRedrawMs = performance.now() - start;
  if (state.selected) showMistakes(state.selected.panel, state.selected.t, state.selected.p);
}

function togglePlay() {
  if (state.playing) {
    clearInterval(state.playing);
    state.playing = null;
    el.play.textContent = '▶';
    el.play.setAttribute('aria-label', 'Play');
    return;
  }
  if (state.k >= state.a.epochs.length - 1) setEpoch(0);
  el.play.textContent = '❚❚';
  el.play.setAttribute('aria-label', 'Pause');
  state.playing = setInterval(() => {
    if (state.k >= state.a.epochs.length - 1) togglePlay();
    else setEpoch(state.k + 1);
  }, PLAY_MS);
}

function onKey(event) {
  const {tagName} = event.target;  // the epoch slider's keys are ours; another control's are its own
  const control = tagName === 'SELECT' || (tagName === 'INPUT' && event.target !== el.slider);
  if (!state.a || control || event.altKey || event.ctrlKey || event.metaKey) return;
  const last = state.a.epochs.length - 1;
  const moves = {ArrowLeft: state.k - 1, ArrowRight: state.k + 1, Home: 0, End: last};
  if (event.key in moves) {
    event.preventDefault();
    setEpoch(moves[event.key]);
  } else if (event.key === ' ') {
    event.preventDefault();
    togglePlay();
  }
}

// The classes shown for a run: all, or the most-confused ones at its last epoch (a set that
// stays put while the slider moves).
function shownClasses(data) {
  if (data !== state.a && state.a && data.n === state.a.n) return shownClasses(state.a);
  const all = () => Array.from({length: data.n}, (_, i) => i);
  const {subsetAbove, subsetSizes} = state.limits;
  if (state.subset === 'all' || (state.subset === 'auto' && data.n <= subsetAbove)) return all();
  const size = state.subset === 'auto' ? subsetSizes[1] : Number(state.subset);  // auto: the middle size
  const key = `${size}`;
  if (data._shownKey !== key) {
    [data._shownKey, data._shownAt] = [key, data.lastStep];
    data._shown = data.mostConfused(data.epochs.length - 1, size);
  }
  return data._shown;  // kept as new epochs arrive (the user's place); chosen again with the Classes menu
}

function redraw() {
  if (!state.a) return;
  const a = state.a;
  updateEpochBar(a);
  showDamage([a, state.b]);
  el.app.dataset.run = runLabel(a);  // the run drawn (for the tests)
  const multi = Boolean(a.multiLabel);
  const calibration = !multi && state.view === 'calibration';  // a multi-label head has no calibration
  el.app.classList.toggle('multi-label', multi);
  el.app.classList.toggle('calibration-view', calibration);
  el.mistakes.hidden = multi || calibration;
  if (!calibration) el.calibration.hide();
  if (multi) {
    redrawMultiLabel(a);
    return;
  }
  el.multi.hide();
  if (calibration) {
    redrawCalibration(a);
    return;
  }
  const panels = [[display(a), state.k]];
  if (state.b) panels.push([display(state.b), state.b.indexAtStep(a.steps[state.k])]);
  const {width, height} = panelSize(el.panels, panels.length);
  while (el.panels.children.length > panels.length) el.panels.lastChild.remove();
  state.layouts = panels.map(([data, k], p) => drawPanel(p, data, k, width, height));
  drawLegendFor();
  el.tables.forEach((table, p) => updateTable(table, ...(panels[p] || [null, 0])));
  updateList(panels[0][0], state.k);
  el.threshold.update(a.binary ? a : null, state.k, state.threshold);
}

function updateEpochBar(a) {
  const step = a.steps[state.k];
  el.slider.max = String(a.epochs.length - 1);
  el.slider.disabled = el.play.disabled = a.epochs.length < 2;
  el.slider.value = String(state.k);
  const newest = state.k === a.epochs.length - 1;
  el.live.textContent = newest ? '● following' : '○ not following · End: the newest';
  el.live.classList.toggle('following', newest);
  el.epochLabel.textContent = a.split === 'test' && a.epochs.length === 1
    ? `Test, after epoch ${step + 1}` : `Epoch ${step + 1} / ${a.steps[a.steps.length - 1] + 1}`;
  el.alarms.update(a, state.k);
}

// The CSS pixels of each of `count` panels starting at `at`: as large as the height allows; the
// sidebar takes the rest (at least SIDE_MIN).
function panelSize(at, count) {
  const room = (el.main.clientWidth || window.innerWidth - 32) - (window.innerWidth > 900 ? SIDE_MIN + 20 : 0);
  const width = Math.max(300, room / count - (count - 1) * 12);
  const top = at.getBoundingClientRect().top + window.scrollY;
  const height = Math.max(320, window.innerHeight - top - 44);  // 44: the panel title and a margin
  return {width, height};
}

// A multi-label run: its counts, table and co-occurrence of errors; no confusion matrix.
function redrawMultiLabel(a) {
  el.panels.replaceChildren();
  state.layouts = [];
  el.tables.forEach((table) => updateTable(table, null, 0));
  el.threshold.update(null);
  el.multi.root.hidden = false;
  const {width, height} = panelSize(el.multi.root, 1);
  el.multi.show(a, state.k, width - 40, height - 60);  // 40: the gap to the sidebar, a scrollbar; 60: titles
  const m = a.maxCooccurrence;
  const widened = a.widened.maxCooccurrence;
  el.legendTitle.textContent = 'Co-occurring errors, count (square-root scale, 0 to the largest over the epochs)'
    + (widened === undefined ? '' : ` · scale widened when epoch ${widened + 1} arrived`);
  drawLegend(el.legend, {scale: sequential, position: (v) => sqrtPos(v, m),
    ticks: [...new Set([0, 0.02, 0.1, 0.25, 0.5, 1].map((f) => Math.round(f * m)))].map((v) => [v, String(v)])});
  const lowest = lowestF1(a, state.k, LISTED);
  el.listTitle.textContent = `Lowest F1 at epoch ${a.steps[state.k] + 1}`;
  el.list.replaceChildren(...lowest.map((r) => h('li', {}, h('span', {class: 'name', text: r.name}),
    h('span', {class: 'num', text: r.f1.toFixed(3)}))));
}

// The calibration view: the reliability diagram of the slider's epoch and the ECE over epochs,
// of the run and of the compared one (at the same epoch, as the matrices); its figures listed.
function redrawCalibration(a) {
  el.panels.replaceChildren();
  state.layouts = [];
  el.tables.forEach((table) => updateTable(table, null, 0));
  el.threshold.update(null);
  const entries = [{data: a, k: state.k, label: runLabel(a)}];
  if (state.b) entries.push({data: state.b, k: state.b.indexAtStep(a.steps[state.k]), label: runLabel(state.b)});
  el.calibration.root.hidden = false;  // where it is, for its size
  const {width, height} = panelSize(el.calibration.root, entries.length);
  el.calibration.show(entries, width, height);
  const stats = calibrationAt(a, state.k);
  el.listTitle.textContent = `Calibration at epoch ${a.steps[state.k] + 1}`;
  el.list.replaceChildren(...(stats ? calibrationFigures(stats).map(([name, value]) => h('li', {},
    h('span', {class: 'name', text: name}), h('span', {class: 'num', text: value})))
    : [h('li', {class: 'hint', text: 'No calibration statistics for this epoch.'})]));
}

// What a panel shows of a run: a binary run with the threshold slider moved off the user's
// threshold, its 2x2 there from the score histograms; else the run's exact counts.
function display(data) {
  if (!data.binary || state.threshold === null) return data;
  return data.atThreshold(Math.round(state.threshold * (data.numThresholds - 1)));
}

// The threshold slider moved (value on the grid) or set back to the user's own (null).
function setThreshold(value) {
  const a = state.a;
  if (!a || !a.binary) return;
  const T = a.numThresholds;
  const k = value === null ? null : Math.max(0, Math.min(T - 1, Math.round(value * (T - 1))));
  const yours = k === null || Math.abs(k / (T - 1) - a.threshold) < 1e-9;
  state.threshold = yours ? null : Number((k / (T - 1)).toFixed(6));
  redraw();
  if (state.selected) showMistakes(state.selected.panel, state.selected.t, state.selected.p);
}

function panelElement(p) {
  let panel = el.panels.children[p];
  if (!panel) {
    const canvas = h('canvas', {class: 'grid', role: 'img'});
    panel = h('div', {class: 'panel'}, h('div', {class: 'panel-title'}), h('div', {class: 'panel-note'}), canvas);
    canvas.addEventListener('mousemove', (e) => hover(p, e));
    canvas.addEventListener('mouseleave', () => { el.tooltip.style.display = 'none'; });
    canvas.addEventListener('click', (e) => click(p, e));
    el.panels.append(panel);
  }
  return panel;
}

function cellValues(data, k) {
  const m = data.dense(k);
  const rows = data.rowSums(k);
  return {
    count: (i, j) => m[i * data.n + j],
    share: (i, j) => (rows[i] > 0 ? m[i * data.n + j] / rows[i] : NaN),
  };
}

function drawPanel(p, data, k, width, height) {
  const panel = panelElement(p);
  const canvas = panel.querySelector('canvas');
  const title = panel.querySelector('.panel-title');
  const classes = shownClasses(data);
  const {grid, describe, note} = state.view === 'recall' ? recallGrid(data, k, classes)
    : matrixGrid(p, data, k, classes);
  title.textContent = panelTitle(data, k, classes) + note;
  title.title = title.textContent;  // in full, when it does not fit
  panel.querySelector('.panel-note').textContent = thresholdNote(data, k);
  canvas.setAttribute('aria-label', `${describe}, ${runLabel(data)}`);
  const layout = drawGrid(canvas, {...grid, width, height});
  panel.style.width = canvas.style.width;
  return {...layout, data, k, classes};
}

function panelTitle(data, k, classes) {
  const subsetNote = classes.length < data.n
    ? ` · ${classes.length} of ${data.n} classes, the most confused at epoch ${(state.a._shownAt ?? state.a.lastStep) + 1}` : '';
  return `${runLabel(data)} · epoch ${data.steps[k] + 1} · accuracy ${pct(data.accuracy(k))}${subsetNote}`;
}

function thresholdNote(data, k) {
  if (data.fromHistograms) {
    const at = Number((data.thresholdK / (data.exact.numThresholds - 1)).toFixed(6));
    return data.fromHistograms[k] ? `At threshold ${at}, from the score histograms`
      : 'No score histograms for this epoch: the exact counts';
  }
  return data.binary ? `At your threshold ${data.threshold}: the exact counts` : '';
}

// Per-class recall (rows) over the epochs (columns), epoch k marked.
function recallGrid(data, k, classes) {
  const recalls = data.epochs.map((_, e) => data.recall(e));
  const colors = new Int16Array(classes.length * data.epochs.length);
  classes.forEach((c, i) => recalls.forEach((recall, j) => {
    colors[i * data.epochs.length + j] = Number.isNaN(recall[c]) ? -1 : recallScale.index(recall[c]);
  }));
  const grid = {
    rows: classes.length, cols: data.epochs.length, rowLabels: classes.map((c) => data.names[c]),
    colLabels: data.steps.map((s) => String(s + 1)), scale: recallScale, colors,
    text: data.epochs.length <= 12 ? (i, j) => recalls[j][classes[i]].toFixed(2) : null,
    markCol: k, xTitle: 'Epoch', yTitle: 'True class',
  };
  const describe = `Recall of ${classes.length} classes over ${data.epochs.length} epochs, `
    + `epoch ${data.steps[k] + 1} marked`;
  return {grid, describe, note: ''};
}

// The confusion matrix at epoch k (matrix view) or its change since epoch k - 1 (diff view).
function matrixGrid(p, data, k, classes) {
  const step = data.steps[k];
  const names = classes.map((c) => data.names[c]);
  const diff = state.view === 'diff';
  const normalized = state.mode === 'normalized';
  let colors;
  if (diff) {
    state.diffMax = Math.max(0.02, sharedMax('maxAbsDiff'));
    colors = diffColors(data, k, classes, state.diffMax);
  } else {
    colors = matrixColors(data, k, classes, normalized ? 0 : sharedMax('maxSupport'));
  }
  const grid = {rows: classes.length, cols: classes.length, rowLabels: names, colLabels: names, square: true,
    scale: diff ? diverging : sequential, divergent: diff, colors, diagonal: true,
    text: diff ? diffText(data, k, classes) : matrixText(data, k, classes, normalized),
    outlines: matrixOutlines(p, data, k, classes, !diff, normalized),
    xTitle: 'Predicted class', yTitle: 'True class'};
  const describe = diff
    ? `Change of the row-normalised confusion matrix from epoch ${step} to ${step + 1}`
    : `Confusion matrix at epoch ${step + 1}, ${normalized ? 'row-normalised' : 'counts'}`;
  return {grid, describe, note: diff && k === 0 ? ' · no previous epoch' : ''};
}

// Colour indices of the shown cells (row-major), computed once per drawing: the row share
// (maxSupport 0) or the count over the largest class support, on a square-root scale.
function matrixColors(data, k, classes, maxSupport) {
  const n = classes.length;
  const m = data.dense(k);
  const rows = data.rowSums(k);
  const colors = new Int16Array(n * n);
  for (let i = 0; i < n; i++) {
    const base = classes[i] * data.n;
    const total = maxSupport || rows[classes[i]];
    for (let j = 0; j < n; j++) {
      const v = m[base + classes[j]];
      colors[i * n + j] = v === 0 ? 0 : sequential.index(Math.sqrt(Math.min(1, v / total)));
    }
  }
  return colors;
}

// Colour indices of the change of each shown cell's row share since epoch k - 1 (white at k = 0).
function diffColors(data, k, classes, maxAbs) {
  const n = classes.length;
  const colors = new Int16Array(n * n).fill(128);
  if (k === 0) return colors;
  const [m, mBefore] = [data.dense(k), data.dense(k - 1)];
  const [rows, rowsBefore] = [data.rowSums(k), data.rowSums(k - 1)];
  for (let i = 0; i < n; i++) {
    const t = classes[i];
    const base = t * data.n;
    const [total, totalBefore] = [rows[t] || Infinity, rowsBefore[t] || Infinity];  // no support: share 0
    for (let j = 0; j < n; j++) {
      const d = m[base + classes[j]] / total - mBefore[base + classes[j]] / totalBefore;
      if (d !== 0) colors[i * n + j] = diverging.index(divPos(d, maxAbs));
    }
  }
  return colors;
}

function matrixText(data, k, classes, normalized) {
  const now = cellValues(data, k);
  return (i, j) => {
    const count = now.count(classes[i], classes[j]);
    if (count === 0) return null;
    return normalized ? now.share(classes[i], classes[j]).toFixed(2) : String(count);
  };
}

function diffText(data, k, classes) {
  if (k === 0) return () => null;
  const [now, before] = [cellValues(data, k), cellValues(data, k - 1)];
  return (i, j) => {
    const d = now.share(classes[i], classes[j]) - before.share(classes[i], classes[j]);
    return Math.abs(d) >= 0.005 ? `${d > 0 ? '+' : '−'}${Math.abs(d).toFixed(2)}` : null;
  };
}

// The largest confusions among the shown cells (matrix view), then the selected cell.
function matrixOutlines(p, data, k, classes, largest, normalized) {
  const position = positions(data, classes);
  const outlines = !largest ? [] : data.topConfusions(k, TOP_CONFUSIONS, position.shown, !normalized)
    .map(({t, p: q}) => ({i: position.at[t], j: position.at[q], color: '#c62828', width: 2}));
  const sel = state.selected;
  if (sel && sel.panel === p) {
    const i = classes.indexOf(sel.t);
    const j = classes.indexOf(sel.p);
    if (i >= 0 && j >= 0) outlines.push({i, j, color: '#1565c0', width: 3});
  }
  return outlines;
}

// One colour scale for both panels (the legend's): the larger of the two runs' ranges.
function sharedMax(key) {
  return Math.max(state.a[key], state.b ? state.b[key] : 0);
}

function drawLegendFor() {
  let legend;
  let title;
  if (state.view === 'recall') {
    legend = {scale: recallScale, position: (v) => v, ticks: [0, 0.25, 0.5, 0.75, 1].map((v) => [v, v.toFixed(2)])};
    title = 'Recall';
  } else if (state.view === 'diff') {
    const m = state.diffMax || 0.02;
    legend = {scale: diverging, position: (v) => divPos(v, m),
      ticks: [[-m, `−${m.toFixed(2)}`], [-m / 4, `−${(m / 4).toFixed(2)}`], [0, '0'],
        [m / 4, `+${(m / 4).toFixed(2)}`], [m, `+${m.toFixed(2)}`]]};
    title = 'Change of the row share (red: more of the row than the epoch before, blue: less)'
      + widenedNote('maxAbsDiff');
  } else if (state.mode === 'normalized') {
    legend = {scale: sequential, position: (v) => Math.sqrt(v),
      ticks: [0, 0.02, 0.1, 0.25, 0.5, 1].map((v) => [v, v === 0 || v === 1 ? String(v) : v.toFixed(2)])};
    title = 'Share of the row (square-root scale)';
  } else {
    const m = sharedMax('maxSupport');
    legend = {scale: sequential, position: (v) => sqrtPos(v, m),
      ticks: [...new Set([0, 0.02, 0.1, 0.25, 0.5, 1].map((f) => Math.round(f * m)))].map((v) => [v, String(v)])};
    title = `Count (square-root scale, 0 to the largest class support)${widenedNote('maxSupport')}`;
  }
  el.legendTitle.textContent = title;
  drawLegend(el.legend, legend);
}

// The colour scales fixed for the runs (largest support, largest change) stay put as epochs
// arrive, and only widen when a new epoch exceeds them: the legend says when it did.
function widenedNote(key) {
  const steps = [state.a, state.b].filter(Boolean).map((d) => d.widened[key]).filter((s) => s !== undefined);
  return steps.length ? ` · scale widened when epoch ${Math.max(...steps) + 1} arrived` : '';
}

// Where each class sits among the shown ones: at[c] (-1 when not shown) and shown[c].
function positions(data, classes) {
  if (data._positionsOf !== classes) {
    const at = new Int32Array(data.n).fill(-1);
    classes.forEach((c, i) => { at[c] = i; });
    data._positionsOf = classes;
    data._positions = {at, shown: Uint8Array.from(at, (i) => (i >= 0 ? 1 : 0))};
  }
  return data._positions;
}

// The largest confusions among the shown classes (matrix and diff views), or the lowest recalls.
function updateList(data, k) {
  const classes = shownClasses(data);
  const step = data.steps[k];
  if (state.view === 'recall') {
    const recall = data.recall(k);
    const lowest = classes.filter((c) => !Number.isNaN(recall[c])).sort((x, y) => recall[x] - recall[y] || x - y)
      .slice(0, LISTED);
    el.listTitle.textContent = `Lowest recall at epoch ${step + 1}`;
    el.list.replaceChildren(...lowest.map((c) => h('li', {}, h('span', {class: 'name', text: data.names[c]}),
      h('span', {class: 'num', text: pct(recall[c])}))));
    return;
  }
  const byCount = state.mode === 'counts';
  const top = data.topConfusions(k, LISTED, positions(data, classes).shown, byCount);
  el.listTitle.textContent = `Largest confusions at epoch ${step + 1}`;
  el.list.replaceChildren(...top.map(({t, p, count, share}) => {
    const button = h('button', {type: 'button', class: 'link',
      'aria-label': `${data.names[t]} -> ${data.names[p]}: ${count} (${pct(share)}), show its mistakes`},
    h('span', {class: 'name', text: `${data.names[t]} → ${data.names[p]}`}),
    h('span', {class: 'num', text: byCount ? `${count}` : pct(share)}));
    button.addEventListener('click', () => selectCell(0, t, p));
    return h('li', {}, button);
  }));
  if (!top.length) el.list.replaceChildren(h('li', {class: 'hint', text: 'No confusions among the shown classes.'}));
}

function updateTable(table, data, k) {
  const classes = data ? shownClasses(data) : [];
  if (!data || classes.length > state.limits.tableMax) {
    table.replaceChildren();
    table.removeAttribute('data-epoch');
    return;
  }
  const v = cellValues(data, k);
  const head = h('tr', {}, h('th', {text: 'true \\ predicted'}), ...classes.map((c) => h('th', {text: data.names[c]})));
  const rows = classes.map((t) => h('tr', {}, h('th', {text: data.names[t]}), ...classes.map((p) => {
    const share = v.share(t, p);
    const shareText = Number.isNaN(share) ? 'NaN' : share.toFixed(4);
    return h('td', {
      'data-true': String(t), 'data-pred': String(p), 'data-count': String(v.count(t, p)),
      'data-share': shareText,
      'aria-label': `${data.names[t]} -> ${data.names[p]}: ${v.count(t, p)} (${Number.isNaN(share) ? '–' : pct(share)})`,
      text: state.mode === 'counts' ? String(v.count(t, p)) : shareText,
    });
  })));
  table.setAttribute('data-epoch', String(data.steps[k]));
  table.setAttribute('data-run', runLabel(data));
  table.setAttribute('aria-label', `Cell values, ${runLabel(data)}, epoch ${data.steps[k] + 1}`);
  table.replaceChildren(h('caption', {text: `${runLabel(data)}, epoch ${data.steps[k] + 1}`}), head, ...rows);
}

function hover(p, event) {
  const layout = state.layouts[p];
  if (!layout) return;
  const rect = event.target.getBoundingClientRect();
  const hit = layout.hit(event.clientX - rect.left, event.clientY - rect.top);
  if (!hit) {
    el.tooltip.style.display = 'none';
    return;
  }
  const {data, k, classes} = layout;
  const [i, j] = hit;
  let text;
  if (state.view === 'recall') {
    const recall = data.recall(j)[classes[i]];
    text = `${data.names[classes[i]]}, epoch ${data.steps[j] + 1}: recall ${recall.toFixed(3)}`;
  } else {
    const t = classes[i];
    const q = classes[j];
    const v = cellValues(data, k);
    text = `${data.names[t]} → ${data.names[q]}: ${v.count(t, q)} (${pct(v.share(t, q) || 0)} of the row)`;
    if (state.view === 'diff' && k > 0) {
      const before = cellValues(data, k - 1).share(t, q) || 0;
      const d = (v.share(t, q) || 0) - before;
      text += `, was ${pct(before)} (${d >= 0 ? '+' : ''}${(100 * d).toFixed(1)} points)`;
    }
    if (t !== q) text += ' · click for its images';
  }
  el.tooltip.textContent = text;
  el.tooltip.style.display = 'block';
  el.tooltip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - el.tooltip.offsetWidth - 8)}px`;
  el.tooltip.style.top = `${event.clientY + 14}px`;
}

function click(p, event) {
  const layout = state.layouts[p];
  if (!layout || state.view === 'recall') return;
  const rect = event.target.getBoundingClientRect();
  const hit = layout.hit(event.clientX - rect.left, event.clientY - rect.top);
  if (hit) selectCell(p, layout.classes[hit[0]], layout.classes[hit[1]]);
}

async function selectCell(p, t, q) {
  state.selected = {panel: p, t, p: q};
  redraw();
  await showMistakes(p, t, q);
}

let mistakesTicket = 0;  // the newest showMistakes call; an older one's late answer is dropped

async function showMistakes(p, t, q) {
  const ticket = ++mistakesTicket;
  const layout = state.layouts[p];
  if (!layout) return;
  const {data, k} = layout;
  const step = data.steps[k];
  const heading = h('h2', {text: `${data.names[t]} → ${data.names[q]}, epoch ${step + 1} (${runLabel(data)})`});
  if (t === q) {
    el.mistakes.replaceChildren(heading, h('p', {text: 'A diagonal cell: these are the right answers. Click an '
      + 'off-diagonal cell to see the mistakes in it.'}));
    return;
  }
  el.mistakes.replaceChildren(heading, h('p', {text: 'Loading…'}));
  let mistakes;
  let explained = null;
  try {
    // the heat maps are a bonus: without them (older runs, --no-explanations, an error) the thumbnails show
    const maps = listed(data)?.explanations
      ? loadExplanations(data.run, data.split, step).catch(() => null) : Promise.resolve(null);
    [mistakes, explained] = await Promise.all([loadMistakes(data.run, data.split, step), maps]);
  } catch (error) {
    if (ticket === mistakesTicket) {
      el.mistakes.replaceChildren(heading, h('p', {text: `Cannot load the mistakes: ${error.message}`}));
    }
    return;
  }
  // another click, epoch or run since: that call shows its own answer (epoch 5's must not land on epoch 3)
  if (ticket !== mistakesTicket || !state.selected || state.selected.t !== t || state.selected.p !== q) return;
  if (mistakes === null) {
    el.mistakes.replaceChildren(heading, h('p', {text: 'This run recorded no mistakes for this epoch '
      + '(the test split and runs with --mistakes 0 have none).'}));
    return;
  }
  const inCell = mistakes.filter((m) => m.true === t && m.predicted === q);
  const count = cellValues(data.exact || data, k).count(t, q);  // the mistakes are at the user's threshold
  const yours = data.exact ? ` At your threshold ${data.exact.threshold}, where the mistakes were kept.` : '';
  const note = h('p', {text: (inCell.length
    ? `${inCell.length} of the ${count} images in this cell are among the epoch's ${mistakes.length} most `
      + 'confident mistakes, most confident first.'
    : `None of the epoch's ${mistakes.length} most confident mistakes fall in this cell (${count} images).`)
    + yours});
  const mapOf = new Map((explained?.records || []).map((r) => [r.position, r.index]));
  const overlays = [];
  const figures = inCell.map((m) => {
    const img = h('img', {src: mistakeImageUrl(data.run, data.split, step, m.index),
      alt: `validation image ${m.position}: ${data.names[m.true]} predicted as ${data.names[m.predicted]}`});
    const thumb = h('div', {class: 'thumb'}, img);
    if (mapOf.has(m.position)) overlays.push(thumb.appendChild(overlayCanvas(img, mapOf.get(m.position))));
    return h('figure', {'data-true': String(m.true), 'data-pred': String(m.predicted),
      'data-confidence': String(m.confidence), 'data-position': String(m.position)}, thumb,
    h('figcaption', {text: `${data.names[m.true]} → ${data.names[m.predicted]} (${pct(m.confidence)})`}));
  });
  const heat = explained && inCell.length ? new HeatMaps(explained, overlays, inCell.length,
    [data.names[t], data.names[q]], state.heatmap,
    (index, map) => explanationImageUrl(data.run, data.split, step, index, map),
    (map) => { state.heatmap = map; }) : null;
  el.mistakes.replaceChildren(heading, note, ...(heat ? heat.controls : []), h('div', {class: 'thumbs'}, ...figures));
  if (heat) heat.show();
}
