// Step 3: renders the statistics as JSON (default) or as plain text (?format=text).
import { defineFunction } from 'baton/sdk';

interface Stats {
  words: number;
  chars: number;
  distinct: number;
  top: [string, number][];
}

export default defineFunction((req, ctx) => {
  const stats = req.msgpack<Stats>();
  if (req.query.get('format') === 'text') {
    const lines = stats.top.map(([w, n]) => `${String(n).padStart(5)}  ${w}`);
    return ctx.text(`${stats.words} words, ${stats.distinct} distinct, ${stats.chars} characters\n${lines.join('\n')}\n`);
  }
  return ctx.json({ ...stats, top: Object.fromEntries(stats.top) });
});
