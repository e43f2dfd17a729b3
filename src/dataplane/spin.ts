// Spin, then park: after a process handles a descriptor it may keep its event loop polling
// for a bounded window (a chain of setImmediate makes libuv poll with a zero timeout, and
// sched_yield between polls lets any other runnable process have the CPU) instead of sleeping
// in epoll at once, so a descriptor that arrives within the window finds it running: no
// wake-up. Past the window it sleeps as usual. Off by default: on the 2-vCPU machine baton is
// measured on, spinning processes take the CPUs from the ones with work (README, Performance).
import { nowUs } from '../descriptor/index.ts';
import { addon } from '../native/index.ts';

export class Spinner {
  private until = 0;
  private spinning = false;
  private readonly yieldCpu: () => void;
  private readonly tick = () => {
    if (nowUs() < this.until) {
      this.yieldCpu();
      setImmediate(this.tick);
    } else {
      this.spinning = false;
    }
  };

  /** `windowUs` 0: never spin. */
  constructor(private readonly windowUs: number) {
    const native = windowUs > 0 ? addon() : undefined;
    this.yieldCpu = native ? () => native.schedYield() : () => {};
  }

  /** A descriptor came or went: keep polling for the window from now. */
  poke(): void {
    if (this.windowUs <= 0) return;
    this.until = nowUs() + this.windowUs;
    if (this.spinning) return;
    this.spinning = true;
    setImmediate(this.tick);
  }
}
