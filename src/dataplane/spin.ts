// Spin, then park: after a process answers, it keeps its event loop polling for a bounded
// window (a chain of setImmediate makes libuv poll with a zero timeout) instead of sleeping
// in epoll at once, so a descriptor that arrives within the window is read by a process that
// is already running — no wake-up. Past the window it sleeps as usual.
import { nowUs } from '../descriptor/index.ts';
import { addon } from '../native/index.ts';

const schedYield = () => addon().schedYield();

export class Spinner {
  private until = 0;
  private spinning = false;
  private readonly tick = () => {
    if (nowUs() < this.until) {
      if (process.env.BATON_SPIN_YIELD) schedYield(); // EXPERIMENT
      setImmediate(this.tick);
    } else this.spinning = false;
  };

  /** `windowUs` 0: never spin. */
  constructor(private readonly windowUs: number) {}

  /** Something happened: keep polling for the window from now. */
  poke(): void {
    if (this.windowUs <= 0) return;
    this.until = nowUs() + this.windowUs;
    if (this.spinning) return;
    this.spinning = true;
    setImmediate(this.tick);
  }
}
