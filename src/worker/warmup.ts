// What a process does before it serves (a spare while it waits for an instance to be wanted,
// or a new instance during its start): it runs the SDK's paths a first request takes —
// decoding and encoding JSON, msgpack and text through req and ctx, on a scratch slot (~2.5 ms)
// — and, `collator` (its function's code compares strings by locale), initialises ICU's default
// collator (String#localeCompare: ~10 ms on its first call in a process here; its data is
// file-backed pages of the node binary, shared by every process, not private memory). So an
// instance's first request does not pay for them: transform's (the text-pipeline example)
// first run from a spare went from 13 to ~2.5 ms.
import { FunctionContext, materialize } from '../sdk/index.ts';

const meta = () => ({ method: 'POST', url: '/warm-up?format=text', contentType: 'application/json' });

export function warmUp({ collator = true } = {}): void {
  if (collator) void 'warm'.localeCompare('up');
  const slot = Buffer.alloc(4096);
  for (let i = 0; i < 3; i++) {
    for (const writer of ['msgpack', 'json', 'text'] as const) {
      const n = slot.write(JSON.stringify({ words: ['warm', 'up', String(i)] }));
      const { req, ctx } = FunctionContext.forSlot('warm-up', meta, slot.subarray(0, n), 0, slot);
      const words = [...req.json<{ words: string[] }>().words].sort();
      void req.query.get('format');
      const value = { words: words.length, top: words };
      const out = writer === 'msgpack' ? ctx.msgpack(value) : writer === 'json' ? ctx.json(value) : ctx.text(words.join(' '));
      materialize(out, ctx, n);
      ctx.close();
      if (writer === 'msgpack') FunctionContext.forSlot('warm-up', meta, slot.subarray(0, out.length), 0, slot).req.msgpack();
    }
  }
}
