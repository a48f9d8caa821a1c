// The mistakes panel's heat maps: Grad-CAM maps (8-bit grey PNGs from the plugin) coloured and laid
// over the mistakes' thumbnails, for the predicted class ("why that?") or the true class ("where
// was the right one?").

import {Scale} from './colors.js';
import {h} from './dom.js';

// Turbo: blue where the class's score barely depends on the image, red where it depends most.
const TURBO = ['#30123b', '#4662d7', '#36aaf9', '#1ae4b6', '#72fe5e', '#c8ef34', '#faba39', '#f66b19',
  '#ca2a04', '#7a0403'];
export const heatScale = new Scale(TURBO);
const MAX_ALPHA = 0.6;  // the hottest pixel still lets the image through

export const MAPS = ['off', 'predicted', 'true'];

// The toolbar above the thumbnails: a button per map, the chosen one pressed. `onChoose(map)`.
function heatToggle(chosen, names, layer, onChoose) {
  const [truth, predicted] = names;
  const labels = {off: 'Images', predicted: `Why ${predicted}?`, true: `Where is the ${truth}?`};
  const titles = {off: 'The images alone',
    predicted: `Grad-CAM of the predicted class (${predicted}) at layer ${layer}: where the image made the `
      + 'model say it',
    true: `Grad-CAM of the true class (${truth}) at layer ${layer}: what the model saw of it`};
  const buttons = MAPS.map((map) => {
    const button = h('button', {type: 'button', class: 'heat-choice', 'data-map': map, title: titles[map],
      'aria-pressed': String(map === chosen), text: labels[map]});
    button.addEventListener('click', () => onChoose(map));
    return button;
  });
  return h('div', {class: 'heat-toggle', role: 'group', 'aria-label': 'Heat maps'},
    h('span', {class: 'heat-label', text: 'Heat map:'}), ...buttons);
}

// A canvas over `img` (an 88 px box, object-fit contain) covering exactly the drawn image, for the
// heat maps of explanation record `index`.
export function overlayCanvas(img, index) {
  const canvas = h('canvas', {class: 'heat', 'aria-hidden': 'true', 'data-index': String(index)});
  const place = () => {
    const box = img.clientWidth || 88;
    const [w, h0] = [img.naturalWidth || 1, img.naturalHeight || 1];
    const [cw, ch] = [Math.round(box * Math.min(1, w / h0)), Math.round(box * Math.min(1, h0 / w))];
    Object.assign(canvas.style, {width: `${cw}px`, height: `${ch}px`, left: `${(box - cw) / 2 + 1}px`,
      top: `${(box - ch) / 2 + 1}px`});
    [canvas.width, canvas.height] = [cw * 2, ch * 2];  // sharp on high-density screens
  };
  if (img.complete && img.naturalWidth) place();
  else img.addEventListener('load', place, {once: true});
  return canvas;
}

// Draws the grey map at `url` into `canvas`, stretched (smoothly) and coloured; alpha grows with heat.
async function drawHeat(canvas, url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const d = pixels.data;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i];
    d[i] = heatScale.rgb[v * 3];
    d[i + 1] = heatScale.rgb[v * 3 + 1];
    d[i + 2] = heatScale.rgb[v * 3 + 2];
    d[i + 3] = Math.round(MAX_ALPHA * v);
  }
  ctx.putImageData(pixels, 0, 0);
  canvas.dataset.drawn = url;
}

// The heat maps of one cell's thumbnails: `controls` (the toggle and a note) to put above them, and
// `show()` to draw the chosen map on every `overlays` canvas. `explained`: the plugin's answer;
// `shown`: how many thumbnails (some may have no map); `names`: [true, predicted] class names;
// `urlFor(index, map)`; `onChoose(map)` keeps the user's choice for the next cell and epoch.
export class HeatMaps {
  constructor(explained, overlays, shown, names, chosen, urlFor, onChoose) {
    Object.assign(this, {overlays, chosen, urlFor});
    const missing = shown - overlays.length;
    const unexplained = missing ? `${missing === shown ? 'These images have' : `${missing} of these images have`}`
      + ` no map (only the epoch's ${explained.records.length} most confident mistakes are explained).` : '';
    if (!overlays.length) {
      this.controls = [h('p', {class: 'heat-note', text: unexplained})];
      return;
    }
    this.toggle = heatToggle(chosen, names, explained.layer, (map) => {
      this.chosen = map;
      onChoose(map);
      this.show();
    });
    const score = explained.score === 'logit' ? 'pre-softmax score' : 'probability';
    this.controls = [this.toggle, h('p', {class: 'heat-note', text: `Grad-CAM at layer ${explained.layer}, `
      + `from the class's ${score}: red where it depends most on the image.${unexplained ? ` ${unexplained}` : ''}`})];
  }

  show() {
    for (const canvas of this.overlays) {
      canvas.hidden = this.chosen === 'off';
      const url = this.urlFor(Number(canvas.dataset.index), this.chosen);
      if (!canvas.hidden && canvas.dataset.drawn !== url) drawHeat(canvas, url).catch(() => { canvas.hidden = true; });
    }
    for (const button of this.toggle?.querySelectorAll('.heat-choice') || []) {
      button.setAttribute('aria-pressed', String(button.dataset.map === this.chosen));
    }
  }
}
