// Per-request timing from the hop trace in the slot, as a Server-Timing header: for hop i,
// `h<i>-<fn>-wait` is send → handler start (delivery, binding and any queueing) and
// `h<i>-<fn>` the handler's run (nested calls: `call-<fn>-wait`, `call-<fn>`); `response` is arrival → first handler start (the
// response time), `gw-wait` the last delivery back, `total` arrival → reply at the
// gateway (the job completion time); `cold-<fn>` marks a request that waited for an instance of
// <fn> to start (scale from zero). Milliseconds.
import { CALL_TRACE_BIT, type HopTrace } from '../pool/index.ts';

export function serverTiming(trace: HopTrace[], names: (fnId: number) => string, lastSent: number, received: number, coldFor: number[] = []): string {
  const ms = (us: number) => (us / 1000).toFixed(3);
  const parts: string[] = coldFor.map((fnId) => `cold-${names(fnId)};desc="waited for an instance to start"`);
  let hop = 0;
  for (const t of trace) {
    const name = isCall(t) ? `call-${names(t.fnId)}` : `h${++hop}-${names(t.fnId)}`;
    parts.push(`${name}-wait;dur=${ms(t.start - t.sent)}`, `${name};dur=${ms(t.end - t.start)}`);
  }
  if (trace.length) parts.push(`response;dur=${ms(firstStart(trace))}`);
  parts.push(`gw-wait;dur=${ms(received - lastSent)}`, `total;dur=${ms(received)}`);
  return parts.join(', ');
}

/** A nested call's entry (ctx.call), copied into its caller's trace when it returned. */
export function isCall(t: HopTrace): boolean {
  return (t.key & CALL_TRACE_BIT) !== 0;
}

/** When the first handler started (µs after arrival): the response time. */
export function firstStart(trace: HopTrace[]): number {
  return trace.reduce((m, t) => Math.min(m, t.start), Infinity);
}
