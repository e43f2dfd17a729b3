// `baton bench`: the scenarios and their order.
import type { Scenario } from './context.ts';
import { binding } from './scenarios/binding.ts';
import { calls } from './scenarios/calls.ts';
import { chain } from './scenarios/chain.ts';
import { coldstart } from './scenarios/coldstart.ts';
import { hop } from './scenarios/hop.ts';
import { idle } from './scenarios/idle.ts';
import { overload } from './scenarios/overload.ts';
import { payload } from './scenarios/payload.ts';
import { scaling } from './scenarios/scaling.ts';
import { soak } from './scenarios/soak.ts';

export const SCENARIOS: Scenario[] = [hop, chain, calls, payload, coldstart, binding, idle, scaling, overload, soak];
export { runBench } from './runner.ts';
