// The gateway's pools: one per security domain, each its own memfd, so a worker — which maps
// only its domain's — cannot see another domain's requests. Slots are numbered across all
// pools (domain d's are slotBase..slotBase+slotCount-1), as the kernel's custody map numbers
// them; this set finds the pool and the slot within it.
import type { DomainSpec } from '../chain/index.ts';
import { batonError } from '../errors.ts';
import type { PoolGeometry } from './layout.ts';
import { Pool, type HopTrace, type RequestMeta } from './pool.ts';

export class PoolSet {
  readonly pools: Pool[] = [];
  readonly slotCount: number;

  constructor(
    readonly domains: DomainSpec[],
    readonly geometry: PoolGeometry,
  ) {
    try {
      for (const _ of domains) this.pools.push(Pool.create(geometry));
    } catch (err) {
      this.close();
      throw err;
    }
    this.slotCount = domains.length * geometry.slotCount;
  }

  /** Payload bytes a slot holds. */
  get capacity(): number {
    return this.pools[0]!.capacity;
  }

  /** Domain `domain`'s memfd, for its workers. */
  fd(domain: number): number {
    return this.pools[domain]!.fd;
  }

  payload(slot: number): Buffer {
    const [pool, local] = this.at(slot);
    return pool.payload(local);
  }

  view(slot: number, length: number): Buffer {
    const [pool, local] = this.at(slot);
    return pool.view(local, length);
  }

  /** Empties a slot's header (metadata, content type, trace). */
  reset(slot: number): void {
    const [pool, local] = this.at(slot);
    pool.reset(local);
  }

  /** Empties a slot's header and writes the request's metadata; false if it does not fit. */
  writeMeta(slot: number, meta: RequestMeta): boolean {
    const [pool, local] = this.at(slot);
    pool.reset(local);
    return pool.writeMeta(local, meta);
  }

  readType(slot: number): string | undefined {
    const [pool, local] = this.at(slot);
    return pool.readType(local);
  }

  readTrace(slot: number): HopTrace[] {
    const [pool, local] = this.at(slot);
    return pool.readTrace(local);
  }

  close(): void {
    for (const p of this.pools) p.close();
  }

  private at(slot: number): [Pool, number] {
    const n = this.geometry.slotCount;
    const pool = this.pools[Math.floor(slot / n)];
    if (!pool || slot < 0) throw batonError('BATON_ERR_POOL', `slot ${slot} is in no domain's pool`);
    return [pool, slot % n];
  }
}
