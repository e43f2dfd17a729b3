// A task of N units (?units=N). A unit is UNIT_MS milliseconds of MODE work:
//   sleep — waits (an I/O-bound task: the instance is busy, the CPU is free)
//   cpu   — spins on real computation (a CPU-bound task)
// Answers with what it did and when, so a load generator can compute JCT and queueing.
// It knows what a task costs before starting it, and says so (ctx.willTake): where the chain
// file sheds (gateway.admission.shed), a task that can no longer finish in time is answered
// 503 at once instead of holding the instance until its 504.
import { createHash } from 'node:crypto';
import { defineFunction } from 'baton/sdk';

const UNIT_MS = Number(process.env.UNIT_MS ?? 0.5);
const MODE = process.env.MODE === 'cpu' ? 'cpu' : 'sleep';
/** What answering takes beyond the task itself, ms: the reply's way back to the client. */
const MARGIN_MS = 20;

function spin(ms: number): void {
  const until = performance.now() + ms;
  const h = createHash('sha256');
  while (performance.now() < until) h.update('baton');
}

export default defineFunction(async (req, ctx) => {
  const units = Number(req.query.get('units') ?? 1);
  if (!Number.isFinite(units) || units < 0) return ctx.status(400).json({ error: 'units must be a non-negative number' });
  const ms = units * UNIT_MS;
  ctx.willTake(ms + MARGIN_MS);
  if (MODE === 'cpu') spin(ms);
  else await new Promise((r) => setTimeout(r, ms));
  return ctx.json({ units, ms, mode: MODE, pid: process.pid });
});
