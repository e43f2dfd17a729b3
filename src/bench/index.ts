// `baton bench`: the scenarios and their order.
import type { Scenario } from './context.ts';
import { hop } from './scenarios/hop.ts';

export const SCENARIOS: Scenario[] = [hop];
export { runBench } from './runner.ts';
