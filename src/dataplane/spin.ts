// Spin, then park: after a process handles a descriptor it may keep its event loop polling
// for a bounded window (a chain of setImmediate makes libuv poll with a zero timeout) instead
// of sleeping in epoll at once, so a descriptor that arrives within the window finds it
// running: no wake-up, and its caches still warm. Past the window it sleeps as usual. A
// function instance that spins runs in an idle cgroup (src/isolation/cgroups.ts), so its
// polling takes only CPU no other process wants; sched_yield between polls cannot do that
// alone (an instance is alone in its group, and yields only within it), but lets the gateway,
// which has no group of its own, give way. The gateway turns an instance's spinning off while
// other processes keep the node's CPUs busy (isolation/spin-priority.ts). Off by default: it
// keeps a CPU busy while traffic comes more often than the window (README, Performance).
import { nowUs } from '../descriptor/index.ts';
import { addon } from '../native/index.ts';

export class Spinner {
  /** Off: no new window, and one under way ends at its next poll. */
  enabled = true;
  private until = 0;
  private spinning = false;
  private readonly yieldCpu: () => void;
  private readonly tick = () => {
    if (this.enabled && nowUs() < this.until) {
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
    if (this.windowUs <= 0 || !this.enabled) return;
    this.until = nowUs() + this.windowUs;
    if (this.spinning) return;
    this.spinning = true;
    setImmediate(this.tick);
  }
}
