// A spare's warm-up runs the SDK's paths on a scratch slot of its own: it completes, and what a
// function does afterwards is exact (nothing of the warm-up's values shows in its result).
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { defineFunction } from '../../src/sdk/index.ts';
import { invoke } from '../../src/sdk/testing.ts';
import { warmUp } from '../../src/worker/warmup.ts';

describe('warmUp', () => {
  it('leaves the SDK as it found it: a function after it reads and writes its own bytes', async () => {
    warmUp();
    const fn = defineFunction((req, ctx) => ctx.msgpack({ got: req.msgpack(), sorted: ['b', 'a'].sort((x, y) => x.localeCompare(y)) }));
    const r = await invoke(fn, { body: pack({ n: 1 }), slotSize: 256 });
    expect(r.body).toEqual(pack({ got: { n: 1 }, sorted: ['a', 'b'] }));
  });
});
