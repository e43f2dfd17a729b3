// A stage of the scaling bench's chain: holds its instance for SLEEP_MS (an instance serves one
// request at a time: the pool size is what scales), and, as ROLE=front, picks the arm of the
// branch that the request's body names.
import { defineFunction } from 'baton/sdk';

const ms = Number(process.env.SLEEP_MS ?? 0);
const front = process.env.ROLE === 'front';

export default defineFunction(async (req, ctx) => {
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  if (front) ctx.next(req.text());
});
