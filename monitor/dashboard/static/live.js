// Following a run while it trains: when to check for new data.
//
// 1. TensorBoard's iframe-plugin protocol (tensorflow/tensorboard, components/experimental/
//    plugin_lib/plugin-guest.ts and plugin_util/message.ts, spoken here in plain JS as that
//    library is not published): the plugin frame posts the string 'experimental.bootstrap' to
//    its parent, transferring one end of a MessageChannel. On that port every message is a
//    JSON string {type, id, payload, error, isReply}; TensorBoard broadcasts
//    'experimental.DataReloaded' after each of its reloads (its reload button, its auto-reload)
//    and 'experimental.RunsChanged' when its run list changes, and waits for a reply of the
//    same type and id with isReply true, which we send for every message.
// 2. A fallback poll every POLL_MS while the frame is visible (any TensorBoard version, or the
//    page opened on its own): stopped while document.hidden or the frame is hidden (0 wide, as
//    TensorBoard hides the frames of inactive tabs), checked at once when it is shown again.
//
// The check itself (index.js) is one small request; checks never overlap: one asked for while
// another runs is run once after it.

export const POLL_MS = 3000;
const RELOAD_MESSAGES = new Set(['experimental.DataReloaded', 'experimental.RunsChanged']);

export class Live {
  constructor(check, pollMs = POLL_MS) {
    this.check = check;  // async (reason) => void
    this.pollMs = pollMs;
    this.timer = null;
    this.running = null;
    this.again = null;
    this.stats = {checks: 0, hostMessages: 0, reasons: {}, connected: false, lastCheckMs: null};
  }

  start() {
    this.stats.connected = connectHost((type) => {
      this.stats.hostMessages += 1;
      this.now(type === 'experimental.RunsChanged' ? 'runs-changed' : 'reload');
    });
    document.addEventListener('visibilitychange', () => (visible() ? this.now('shown') : this.stop()));
    window.addEventListener('resize', () => {
      if (visible() && this.timer === null && !this.running) this.now('shown');
    });
    this.schedule();
  }

  setPollMs(ms) {
    this.pollMs = ms;
    this.schedule();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule() {
    this.stop();
    // hidden since (another TensorBoard tab: no visibilitychange, only a resize): no check
    if (visible()) this.timer = setTimeout(() => (visible() ? this.now('poll') : this.stop()), this.pollMs);
  }

  // Checks now (or right after the check running); resolves when that check is done.
  async now(reason) {
    if (this.running) {
      this.again = this.again || this.running.then(() => { this.again = null; return this.now(reason); });
      return this.again;
    }
    this.stop();
    this.stats.checks += 1;
    this.stats.reasons[reason] = (this.stats.reasons[reason] || 0) + 1;
    this.running = this.check(reason).catch(() => {}).finally(() => {
      this.running = null;
      this.schedule();
    });
    return this.running;
  }
}

const visible = () => !document.hidden && window.innerWidth > 0;

// Speaks the guest side of TensorBoard's plugin protocol; false when not in a frame.
function connectHost(onMessage) {
  if (window.parent === window) return false;
  const channel = new MessageChannel();
  channel.port1.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || message.isReply) return;
    if (RELOAD_MESSAGES.has(message.type)) onMessage(message.type);
    channel.port1.postMessage(JSON.stringify({type: message.type, id: message.id, payload: null, error: null,
      isReply: true}));
  };
  window.parent.postMessage('experimental.bootstrap', '*', [channel.port2]);
  return true;
}
