// Per-request timing from the hop trace in the slot, as a Server-Timing header:
// for hop i, `h<i>-<fn>-wait` is delivery (previous send → receive) and `h<i>-<fn>` the
// handler's run; `gw-wait` is the last delivery back to the gateway, `total` the whole
// time from arrival to the reply reaching the gateway. Values in milliseconds.
import type { HopTrace } from '../pool/index.ts';

export function serverTiming(trace: HopTrace[], names: (fnId: number) => string, lastSent: number, received: number): string {
  const ms = (us: number) => (us / 1000).toFixed(3);
  const parts: string[] = [];
  trace.forEach((t, i) => {
    const name = names(t.fnId);
    parts.push(`h${i + 1}-${name}-wait;dur=${ms(t.recv - t.sent)}`, `h${i + 1}-${name};dur=${ms(t.end - t.start)}`);
  });
  parts.push(`gw-wait;dur=${ms(received - lastSent)}`, `total;dur=${ms(received)}`);
  return parts.join(', ');
}
