// Before a spare says 'spare' it sends one made-up request through its own request path: a
// descriptor written into a socket, read by the addon, decoded and checked, run by a stand-in
// handler on a scratch slot, the result and (late binding) the Idle notice encoded and written
// back — the path every request takes, on a socket pair and a pool of its own, both closed
// after, so nothing of it reaches the data plane, the gateway or another request (and no
// function code has been loaded yet). V8 compiles a function on its first call and its inline
// caches learn on the first runs: without this, an instance's first request paid for both
// (descriptor in → result out ~1.3–2 ms against ~0.15 ms warm, by hand); the function's own
// handler is the one part left cold for its first request.
import { Endpoint } from '../dataplane/endpoint.ts';
import { blankDescriptor, decode, GATEWAY_KEY, Kind, nowUs } from '../descriptor/index.ts';
import { native } from '../native/index.ts';
import { MIN_SLOT_SIZE, Pool } from '../pool/index.ts';
import type { Handler } from '../sdk/index.ts';
import type { WorkerConfig } from './config.ts';
import { WorkerRuntime } from './runtime.ts';

/** A rehearsal that has not finished by then is abandoned (it takes 3–5 ms in a spare). */
const GIVE_UP_MS = 1000;

const standIn: Handler = (req, ctx) => ctx.json({ bytes: req.body.length, text: req.text().slice(0, 16) });

/** What came back from the rehearsal: the answer's kind and status (Kind.Reply, 200 when the
 *  path works), or undefined if nothing came back in time. */
export interface Rehearsed {
  kind: Kind;
  status: number;
}

export async function rehearse(cfg: WorkerConfig): Promise<Rehearsed | undefined> {
  const pool = Pool.create({ slotSize: MIN_SLOT_SIZE, slotCount: 1 });
  let pair: [number, number];
  try {
    pair = native((a) => a.unixPair());
  } catch (err) {
    pool.close();
    throw err;
  }
  const [mine, theirs] = pair;
  return new Promise((resolve) => {
    let runtime: WorkerRuntime | undefined;
    let done = false;
    const finish = (answer?: Rehearsed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      instance.destroy();
      gateway.destroy();
      pool.close();
      resolve(answer);
    };
    const instance = new Endpoint(mine, { frame: (f) => runtime?.onFrame(f), end: () => finish() });
    const gateway = new Endpoint(theirs, {
      frame: (f) => {
        let d;
        try {
          d = decode(f);
        } catch {
          return finish();
        }
        if (d.kind !== Kind.Idle && d.kind !== Kind.Ack) finish({ kind: d.kind, status: d.status });
      },
      end: () => finish(),
    });
    const timer = setTimeout(() => finish(), GIVE_UP_MS);
    const quiet = { warn() {}, error() {} };
    runtime = new WorkerRuntime({ ...cfg, slotBase: 0 }, pool, instance, standIn, quiet);
    const body = Buffer.from('{"rehearsal":true}');
    body.copy(pool.payload(0));
    pool.writeMeta(0, { method: 'POST', url: '/rehearsal', contentType: 'application/json' });
    // the last step of a chain: its result goes back to the gateway's key, here the pair's end
    const chain = cfg.deployment.chains[0];
    gateway.send(blankDescriptor({
      key: cfg.key, kind: Kind.Call, reqId: 1, gen: 1, fnId: cfg.fnId, slot: 0, length: body.length, chainId: 0,
      hop: chain ? chain.steps.length - 1 : 0, sender: GATEWAY_KEY, tArrive: nowUs(),
    }));
  });
}
