// Where a descriptor goes after a function ran: the chain's next step (or the branch the
// handler chose), or back to the gateway. A late-bound function is addressed as a whole
// (the kernel picks an idle instance); an early-bound one gets its live instances in turn.
import type { Deployment } from '../chain/index.ts';
import { fnAddress, GATEWAY_FN, GATEWAY_KEY } from '../descriptor/index.ts';
import { batonError } from '../errors.ts';

export interface Hop {
  key: number;
  fnId: number;
  hop: number;
}

export class Router {
  private readonly rr: number[];
  /** Early binding: keys of each function's running instances. */
  private live: number[][];

  constructor(
    private readonly d: Pick<Deployment, 'functions' | 'chains'>,
    live?: number[][],
  ) {
    this.rr = d.functions.map(() => 0);
    this.live = live ?? d.functions.map((f) => f.keys.slice(0, f.instances));
  }

  setLive(live: number[][]): void {
    this.live = live;
  }

  /** The first hop of a chain (the gateway sends it). */
  first(chainId: number): Hop {
    return this.at(this.chain(chainId).steps[0]![0]!, 0);
  }

  /** The hop after step `hop` of `chainId`; `chosen` is the handler's ctx.next(). */
  after(chainId: number, hop: number, from: string, chosen?: string, ended = false): Hop {
    const steps = this.chain(chainId).steps;
    const next = hop + 1;
    if (ended || next >= steps.length) {
      if (chosen !== undefined) {
        throw batonError('BATON_ERR_BAD_NEXT', `'${from}' chose '${chosen}' but is the last step of its chain`);
      }
      return { key: GATEWAY_KEY, fnId: GATEWAY_FN, hop: next };
    }
    const options = steps[next]!;
    if (chosen !== undefined) {
      // by name among the next step's functions (those of this chain's domain)
      const fid = options.find((id) => this.d.functions[id]!.name === chosen);
      if (fid === undefined) {
        throw batonError('BATON_ERR_BAD_NEXT', `'${from}' chose '${chosen}'; the next step is one of: ${this.names(options)}`);
      }
      return this.at(fid, next);
    }
    if (options.length > 1) {
      throw batonError('BATON_ERR_BAD_NEXT', `'${from}' must choose the next step with ctx.next(): one of ${this.names(options)}`);
    }
    return this.at(options[0]!, next);
  }

  /** Where to send a descriptor for `fnId`, avoiding the key `avoid` (known dead). */
  address(fnId: number, avoid = -1): number {
    if (this.d.functions[fnId]!.binding === 'late') return fnAddress(fnId);
    const keys = avoid < 0 ? this.live[fnId]! : this.live[fnId]!.filter((k) => k !== avoid);
    if (keys.length === 0) throw batonError('BATON_ERR_DEAD_LETTER', `function '${this.d.functions[fnId]!.name}' has no running instance`);
    const i = this.rr[fnId]! % keys.length;
    this.rr[fnId] = (i + 1) % keys.length;
    return keys[i]!;
  }

  private at(fnId: number, hop: number): Hop {
    return { key: this.address(fnId), fnId, hop };
  }

  private chain(chainId: number) {
    const c = this.d.chains[chainId];
    if (!c) throw batonError('BATON_ERR_BAD_NEXT', `unknown chain ${chainId}`);
    return c;
  }

  private names(ids: number[]): string {
    return ids.map((i) => this.d.functions[i]!.name).join(', ');
  }
}
