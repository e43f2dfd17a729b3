// `baton bench`: the scenarios and their order.
import type { Scenario } from './context.ts';
import { chain } from './scenarios/chain.ts';
import { hop } from './scenarios/hop.ts';
import { payload } from './scenarios/payload.ts';

export const SCENARIOS: Scenario[] = [hop, chain, payload];
export { runBench } from './runner.ts';
