// `static`: what is configured — the chain file's instances, and what POST /_baton/scale sets.
// The scaler still starts an instance for a request that finds none (scale from zero).
import type { Decision, ScalingPolicy } from './policy.ts';

export class StaticPolicy implements ScalingPolicy {
  readonly name = 'static';
  observe(): void {}
  decide(): Decision[] {
    return [];
  }
}
