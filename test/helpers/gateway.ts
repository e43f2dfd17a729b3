// Starts a real gateway (real BPF program, pool, worker processes, HTTP on a free port)
// for a chain written inline, with modules from test/fixtures/functions.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { compileChainFile, type ChainFileInput } from '../../src/chain/index.ts';
import { Gateway, type GatewayOptions } from '../../src/gateway/index.ts';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/functions');
export const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

export function startGateway(doc: ChainFileInput, options: GatewayOptions = {}, baseDir = FIXTURES): Promise<Gateway> {
  const deployment = compileChainFile(doc, baseDir);
  return Gateway.start(deployment, {
    port: 0,
    adminPort: 0,
    logger: pino({ level: process.env.BATON_TEST_LOG ?? 'silent' }),
    ...options,
  });
}

/** Polls `check` until it is true; throws with `what` after `ms`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every slot is free again, nothing is kept for a late worker, and no request is open. */
export function poolSettled(gw: Gateway, ms?: number): Promise<void> {
  return waitFor(
    'all pool slots to be free',
    () => gw.slots.free() === gw.slots.count && gw.slots.quarantined === 0 && gw.requests.size === 0,
    ms,
  );
}
