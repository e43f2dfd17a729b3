// Step 1 of the text pipeline: splits the posted text into words and counts them.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => {
  const text = req.text();
  const words = text.split(/\s+/).filter(Boolean);
  return ctx.msgpack({ words, chars: text.length });
});
