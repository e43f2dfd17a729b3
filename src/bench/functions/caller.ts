// The bench's calling function: passes its payload to `callee` CALLS times with ctx.call(),
// all at once (MODE=parallel) or one after another (MODE=sequential), then passes it on.
import { defineFunction } from 'baton/sdk';

const CALLS = Number(process.env.CALLS ?? 1);
const SEQUENTIAL = process.env.MODE === 'sequential';

export default defineFunction(async (req, ctx) => {
  if (SEQUENTIAL) {
    for (let i = 0; i < CALLS; i++) await ctx.call('callee', req.body);
  } else {
    await Promise.all(Array.from({ length: CALLS }, () => ctx.call('callee', req.body)));
  }
  return undefined;
});
