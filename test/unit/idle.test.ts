import { describe, expect, it } from 'vitest';
import { IdleTokens } from '../../src/binding/idle.ts';
import { IDLE_WORDS, MAX_FUNCTIONS } from '../../src/descriptor/index.ts';

describe('idle tokens', () => {
  const fresh = () => new IdleTokens(new ArrayBuffer(MAX_FUNCTIONS * IDLE_WORDS * 8));

  it('gives and takes tokens per instance, never more than its concurrency', () => {
    const t = fresh();
    expect(t.take(3, 2)).toBe(-1);
    expect(t.give(3, 5, 2)).toBe(true);
    expect(t.give(3, 5, 2)).toBe(true);
    expect(t.give(3, 5, 2)).toBe(false); // instance 5 has only 2 tokens
    expect(t.count(3)).toBe(2);
    expect(t.count(4)).toBe(0); // functions do not share words
    expect(t.take(3, 2)).toBe(5);
    expect(t.take(3, 2)).toBe(5);
    expect(t.take(3, 2)).toBe(-1);
  });

  it('handles token ranges that cross 64-bit words and the last token', () => {
    const t = fresh();
    // concurrency 3: instance 21 owns tokens 63, 64, 65 (across words 0 and 1)
    for (let i = 0; i < 3; i++) expect(t.give(0, 21, 3)).toBe(true);
    expect(t.count(0)).toBe(3);
    expect(t.revoke(0, 21, 3)).toBe(3);
    expect(t.count(0)).toBe(0);
    // the last token of the last function
    expect(t.give(MAX_FUNCTIONS - 1, IDLE_WORDS * 64 - 1, 1)).toBe(true);
    expect(t.take(MAX_FUNCTIONS - 1, 1)).toBe(IDLE_WORDS * 64 - 1);
  });

  it('revoke reports how many tokens were idle', () => {
    const t = fresh();
    t.give(1, 0, 4);
    t.give(1, 0, 4);
    expect(t.revoke(1, 0, 4)).toBe(2);
    expect(t.take(1, 4)).toBe(-1);
  });
});
