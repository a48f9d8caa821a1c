// The training alarms on the epoch slider: a tick above the track at each epoch with alerts
// (orange-red where an alarm started, grey where alarms only ended), its messages as the tooltip,
// and the slider's epoch's alerts listed beneath it. Messages go in as text, never as HTML.

import {h} from './dom.js';

const THUMB = 16;  // px: the range input's thumb (Chromium's); its centre runs from THUMB / 2 to width - THUMB / 2

// One alert as one line of text.
export const alertText = (a) => `Epoch ${a.epoch}: ${a.message}${a.event === 'ended' ? ' (ended)' : ''}`;

// slider index -> the alerts it shows: an alert at a step with no epoch on the slider (the alarms
// speak every epoch, the counts come every --every-n-epochs) shows at the next epoch on it; one
// after the newest epoch held waits for its epoch.
export function alertsByIndex(data) {
  const out = new Map();
  const steps = [...data.alerts.keys()].sort((x, y) => x - y);
  let k = 0;
  for (const step of steps) {
    while (k < data.steps.length && data.steps[k] < step) k += 1;
    if (k === data.steps.length) break;
    out.set(k, [...(out.get(k) || []), ...data.alerts.get(step)]);
  }
  return out;
}

export class AlarmMarkers {
  constructor(onPick) {
    this.onPick = onPick;  // (slider index) => void
    this.track = h('div', {id: 'alarm-markers', class: 'alarm-markers'});
    this.list = h('ul', {id: 'epoch-alerts', class: 'epoch-alerts', 'aria-live': 'polite', hidden: ''});
  }

  // The markers of `data`'s alerts (none for null) and the alerts at slider index k.
  update(data, k) {
    const byIndex = data && data.alerts ? alertsByIndex(data) : new Map();
    const last = data ? data.epochs.length - 1 : 0;
    this.track.replaceChildren(...[...byIndex].map(([i, alerts]) => this.marker(data, i, last, alerts)));
    const here = byIndex.get(k) || [];
    this.list.hidden = !here.length;
    this.list.replaceChildren(...here.map((a) => h('li', {class: `alert ${a.event}`, 'data-rule': a.rule,
      text: alertText(a)})));
  }

  marker(data, i, last, alerts) {
    const started = alerts.some((a) => a.event !== 'ended');
    const text = alerts.map(alertText).join('\n');
    const step = data.steps[i];
    const marker = h('button', {type: 'button', class: `alarm-marker ${started ? 'started' : 'ended'}`,
      title: text, 'aria-label': `Alarms at epoch ${step + 1}: ${text}`, 'data-index': String(i),
      'data-step': String(step), 'data-epoch': String(step + 1)});
    marker.style.left = `calc(${THUMB / 2}px + (100% - ${THUMB}px) * ${last > 0 ? i / last : 0.5})`;
    marker.addEventListener('click', () => this.onPick(i));
    return marker;
  }
}
