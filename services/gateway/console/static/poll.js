// Polling with backoff: `step()` runs, then again after `min` ms while it reports changes,
// waiting `factor` times longer after each quiet round up to `max`. A failed step waits
// twice as long; a step may ask for a longer wait (`{wait}`, e.g. from Retry-After) or end
// the polling (`{done: true}`). Nothing is polled while the tab is hidden.

export class Poller {
  constructor(step, { min = 2000, max = 30000, factor = 1.6 } = {}) {
    Object.assign(this, { step, min, max, factor });
    this.delay = min;
    this.timer = null;
    this.running = false;
    this.busy = false;
    this.poked = false;
    this.onVisibility = () => { if (!document.hidden && this.running) this.poke(); };
  }

  start() {
    if (this.running) return;
    this.running = true;
    document.addEventListener("visibilitychange", this.onVisibility);
    this.poke();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  // Run now and go back to the shortest interval (after the user changed something).
  poke() {
    this.poked = true;
    this.delay = this.min;
    this.schedule(0);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.tick(), ms);
  }

  async tick() {
    if (!this.running || document.hidden || this.busy) return;
    this.busy = true;
    this.poked = false;
    let outcome;
    try {
      outcome = (await this.step()) || {};
    } catch (error) {
      outcome = { error };
    } finally {
      this.busy = false;
    }
    if (!this.running) return;
    if (outcome.done) { this.stop(); return; }
    if (this.poked || outcome.changed) this.delay = this.min;
    else if (outcome.error) this.delay = Math.min(this.max, this.delay * 2);
    else this.delay = Math.min(this.max, this.delay * this.factor);
    this.schedule(Math.max(this.poked ? 0 : this.delay, outcome.wait || 0));
  }
}
