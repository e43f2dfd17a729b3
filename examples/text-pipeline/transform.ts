// Step 2: word frequencies, most frequent first (msgpack in, msgpack out, read in place).
import { defineFunction } from 'baton/sdk';

interface Parsed {
  words: string[];
  chars: number;
}

export default defineFunction((req, ctx) => {
  const { words, chars } = req.msgpack<Parsed>();
  const counts = new Map<string, number>();
  for (const w of words) {
    const k = w.toLowerCase().replace(/[^\p{L}\p{N}'-]/gu, '');
    if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10);
  return ctx.msgpack({ words: words.length, chars, distinct: counts.size, top });
});
