// Step 1: turns the posted name into a greeting (JSON for the next step).
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => {
  const name = req.text().trim() || 'stranger'; // read the input before writing the output
  return ctx.json({ greeting: `hello, ${name}` });
});
