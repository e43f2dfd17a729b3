// Admission control's decision logic on crafted inputs: the AIMD update of the admit
// probability, classes a header may ask for, downgrades and the lowest class's limit.
import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionSettings, type Ticket } from '../../src/admission/admission.ts';
import { AdmitProbability } from '../../src/admission/aimd.ts';
import { classOf } from '../../src/admission/classes.ts';
import { BatonError } from '../../src/errors.ts';

const AIMD = { alpha: 0.01, beta: 0.01, floor: 0.1, sizeUnit: 1000, windowMs: 10 };

describe('the admit probability (AIMD)', () => {
  it('a window with a miss lowers p by β × the miss\'s size in units; a window of hits raises it by α', () => {
    const a = new AdmitProbability(AIMD);
    a.observe(0, 5, 10, 100); // opens the window
    a.observe(5, 50, 10, 2500); // a miss of 3 units, within the window: no update yet
    expect(a.p).toBe(1);
    a.observe(10, 5, 10, 100); // the window closes: it saw a miss
    expect(a.p).toBeCloseTo(0.97);
    a.observe(20, 5, 10, 100); // a window of hits only
    expect(a.p).toBeCloseTo(0.98);
    expect([a.decreases, a.increases]).toEqual([1, 1]);
  });

  it('never goes below the floor nor above 1, and updates at most once per window', () => {
    const a = new AdmitProbability(AIMD);
    for (let t = 0; t <= 10_000; t++) a.observe(t, 50, 10, 1000); // every answer misses, for 10 s
    expect(a.p).toBe(0.1);
    expect(a.decreases).toBe(1000); // one per 10 ms window, not one per answer
    for (let t = 10_001; t <= 30_000; t++) a.observe(t, 1, 10, 1000);
    expect(a.p).toBe(1);
  });

  it('admits a draw below p', () => {
    const a = new AdmitProbability(AIMD);
    a.p = 0.3;
    expect([a.admits(0.29), a.admits(0.3), a.admits(0.9)]).toEqual([true, false, false]);
  });
});

describe('classes', () => {
  it('a header may lower a request\'s class, never raise it; an unknown one is ignored', () => {
    expect(classOf(1, undefined)).toBe(1);
    expect(classOf(1, 'best-effort')).toBe(2);
    expect(classOf(1, 'critical')).toBe(1);
    expect(classOf(0, ' Normal ')).toBe(1);
    expect(classOf(1, 'urgent')).toBe(1);
    expect(classOf(1, ['critical', 'critical'])).toBe(1);
  });
});

describe('admission', () => {
  const settings = (over: Partial<AdmissionSettings> = {}): AdmissionSettings => ({
    enabled: true, ...AIMD, lowestInFlight: 2, retryAfterS: 1, starvationShare: 0.05, shed: false, shedCheckMs: 10, slo: { critical: 10, normal: 100, 'best-effort': 1000 }, ...over,
  });
  const rig = (over: Partial<AdmissionSettings> = {}) => {
    const clock = { t: 0, draw: 0.5 };
    const a = new Admission(settings(over), () => 0, () => clock.draw, () => clock.t);
    return { a, clock };
  };

  it('downgrades a critical request its (route, class) does not admit, and counts it', () => {
    const { a, clock } = rig();
    // critical answers miss their 10 ms target for a second (every one admitted): p falls to its floor
    clock.draw = 0;
    for (; clock.t < 1000; clock.t++) a.done(a.admit(0, undefined, 0) as Ticket, 50);
    expect(a.probability(0, 0)).toBe(0.1);
    clock.draw = 0.5;
    const t = a.admit(0, undefined, 0) as Ticket;
    expect([t.asked, t.rank]).toEqual([0, 2]);
    clock.draw = 0.05;
    expect((a.admit(0, undefined, 0) as Ticket).rank).toBe(0);
    const c = a.status(String).classes.critical!;
    expect([c.downgraded, c.metSlo]).toEqual([1, 0]);
  });

  it('a downgraded request\'s answer does not move its class\'s probability', () => {
    const { a, clock } = rig();
    a.done({ chainId: 0, asked: 0, rank: 2, bytes: 0 }, 5000);
    clock.t = 100;
    a.done({ chainId: 0, asked: 0, rank: 2, bytes: 0 }, 5000);
    expect(a.probability(0, 0)).toBe(1);
  });

  it('refuses the lowest class beyond lowestInFlight with BATON_ERR_OVERLOADED, and takes it again once one is settled', () => {
    const { a } = rig();
    const one = a.admit(0, 'best-effort', 0) as Ticket;
    a.admit(0, 'best-effort', 0);
    const refused = a.admit(0, 'best-effort', 0);
    expect(refused).toBeInstanceOf(BatonError);
    expect((refused as BatonError).code).toBe('BATON_ERR_OVERLOADED');
    expect((refused as BatonError).status).toBe(429);
    a.done(one, -1); // never answered (its client went away): its place is free all the same
    expect(a.admit(0, 'best-effort', 0)).not.toBeInstanceOf(BatonError);
    const be = a.status(String).classes['best-effort']!;
    expect([be.admitted, be.rejected, be.answered]).toEqual([3, 1, 0]);
  });

  it('off: counts classes, downgrades and refuses nothing', () => {
    const { a, clock } = rig({ enabled: false });
    for (; clock.t < 1000; clock.t++) a.done(a.admit(0, undefined, 0) as Ticket, 50);
    for (let i = 0; i < 10; i++) expect(a.admit(0, 'best-effort', 0)).not.toBeInstanceOf(BatonError);
    expect(a.probability(0, 0)).toBe(1);
    expect(a.status(String).classes.critical!.answered).toBe(1000);
  });
});
