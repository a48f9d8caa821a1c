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
export function heatToggle(chosen, names, layer, onChoose) {
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

// A canvas over `img` (an 88 px box, object-fit contain) covering exactly the drawn image.
export function overlayCanvas(img) {
  const canvas = h('canvas', {class: 'heat', 'aria-hidden': 'true'});
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
  canvas.place = place;
  return canvas;
}

// Draws the grey map at `url` into `canvas`, stretched (smoothly) and coloured; alpha grows with heat.
export async function drawHeat(canvas, url) {
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
