// Per-request timing from the hop trace in the slot, as a Server-Timing header: for hop i,
// `h<i>-<fn>-wait` is send → handler start (delivery, binding and any queueing) and
// `h<i>-<fn>` the handler's run; `response` is arrival → first handler start (the
// response time), `gw-wait` the last delivery back, `total` arrival → reply at the
// gateway (the job completion time). Milliseconds.
import type { HopTrace } from '../pool/index.ts';

export function serverTiming(trace: HopTrace[], names: (fnId: number) => string, lastSent: number, received: number): string {
  const ms = (us: number) => (us / 1000).toFixed(3);
  const parts: string[] = [];
  trace.forEach((t, i) => {
    const name = names(t.fnId);
    parts.push(`h${i + 1}-${name}-wait;dur=${ms(t.start - t.sent)}`, `h${i + 1}-${name};dur=${ms(t.end - t.start)}`);
  });
  if (trace.length) parts.push(`response;dur=${ms(trace[0]!.start)}`);
  parts.push(`gw-wait;dur=${ms(received - lastSent)}`, `total;dur=${ms(received)}`);
  return parts.join(', ');
}
