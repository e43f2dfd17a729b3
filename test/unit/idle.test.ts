import { describe, expect, it } from 'vitest';
import { IdleTokens } from '../../src/binding/idle.ts';
import { IDLE_STRIDE, IDLE_WORDS, MAX_FUNCTIONS } from '../../src/descriptor/index.ts';

describe('idle tokens', () => {
  const fresh = () => new IdleTokens(new ArrayBuffer(MAX_FUNCTIONS * IDLE_STRIDE * 8));

  it('gives and takes tokens per instance, never more than its concurrency', () => {
    const t = fresh();
    expect(t.take(3, 2)).toBe(-1);
    expect(t.give(3, 5, 2)).toBe(10);
    expect(t.give(3, 5, 2)).toBe(11);
    expect(t.give(3, 5, 2)).toBe(-1); // instance 5 has only 2 tokens
    expect(t.count(3)).toBe(2);
    expect(t.count(4)).toBe(0); // functions do not share words
    expect(t.take(3, 2)).toBe(5);
    expect(t.take(3, 2)).toBe(5);
    expect(t.take(3, 2)).toBe(-1);
  });

  it('handles token ranges that cross 64-bit words and the last token', () => {
    const t = fresh();
    // concurrency 3: instance 21 owns tokens 63, 64, 65 (across words 0 and 1)
    expect([0, 1, 2].map(() => t.give(0, 21, 3))).toEqual([63, 64, 65]);
    expect(t.count(0)).toBe(3);
    expect(t.revoke(0, 21, 3)).toBe(3);
    expect(t.count(0)).toBe(0);
    // the last token of the last function
    expect(t.give(MAX_FUNCTIONS - 1, IDLE_WORDS * 64 - 1, 1)).toBe(IDLE_WORDS * 64 - 1);
    expect(t.take(MAX_FUNCTIONS - 1, 1)).toBe(IDLE_WORDS * 64 - 1);
  });

  it('revoke reports how many tokens were idle; takeBack takes one exact token', () => {
    const t = fresh();
    t.give(1, 0, 4);
    const second = t.give(1, 0, 4);
    expect(t.takeBack(1, second)).toBe(true);
    expect(t.takeBack(1, second)).toBe(false);
    t.give(1, 0, 4);
    expect(t.revoke(1, 0, 4)).toBe(2);
    expect(t.take(1, 4)).toBe(-1);
  });

  it('keeps membership per instance, the queue length, and tells a consistent snapshot', () => {
    const t = fresh();
    t.setMember(2, 1, 3, true);
    expect([t.member(2, 0, 3), t.member(2, 1, 3), t.member(2, 2, 3)]).toEqual([false, true, false]);
    t.setMember(2, 1, 3, false);
    expect(t.member(2, 1, 3)).toBe(false);
    t.addQueued(2, 2);
    t.addQueued(2, -1);
    t.give(2, 0, 3);
    expect(t.snapshot(2)).toMatchObject({ queued: 1, idle: 1, consistent: true });
    t.addWithdrawn(2); // the one left is withdrawn: not really waiting
    expect(t.live(2)).toBe(0);
    expect(t.queued(3)).toBe(0);
  });
});
