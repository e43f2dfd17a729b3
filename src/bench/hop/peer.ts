// One side of a hop measurement, in its own process. 'a' sends descriptors to 'b', which
// sends each straight back: a round trip is two hops. Transports:
//   sockmap — the socket on fd 3 is in baton's sockmap; keys 1 (a) and 2 (b); read and
//             written through baton's own endpoint, as its gateway and workers do
//   broker  — a Unix socket to the user-space broker (a relay process), same frames
//   http    — b is an HTTP server, a posts each 64-byte descriptor with keep-alive
// Commands come over IPC: {cmd:'latency', n} → RTT samples (ns); {cmd:'saturate', inflight, ms}
// → round trips completed. Descriptor i of those in flight is for request i+1 in slot i (the
// scenario sets up the kernel's custody so the sockmap program accepts them).
import http from 'node:http';
import net from 'node:net';
import { Agent, request } from 'undici';
import { Endpoint } from '../../dataplane/endpoint.ts';
import { FrameReader } from '../../dataplane/framing.ts';
import { blankDescriptor, decode, encodeInto, DESC_SIZE, Kind, type Descriptor } from '../../descriptor/index.ts';

const [role, transport, arg] = process.argv.slice(2) as ['a' | 'b', 'sockmap' | 'broker' | 'http', string];
const KEY = { a: 1, b: 2 };
const template: Descriptor = blankDescriptor({ key: 0, kind: Kind.Call, reqId: 1, gen: 1 });

/** The descriptor of in-flight request `reqId` (1..INFLIGHT), addressed to `to`. */
function frame(to: number, reqId: number): Buffer {
  const b = Buffer.allocUnsafe(DESC_SIZE);
  encodeInto({ ...template, key: to, reqId, slot: reqId - 1, fnId: to === KEY.b ? 1 : 0, sender: KEY[role] }, b);
  return b;
}

/** A frame stream to the other side, calling `onFrame` with each; resolves once connected. */
async function stream(onFrame: (f: Buffer) => void): Promise<{ write(b: Buffer): void }> {
  if (transport === 'sockmap') {
    const endpoint = new Endpoint(3, { frame: onFrame });
    return { write: (b) => endpoint.sendEncoded(b) };
  }
  const s = net.connect(arg);
  await new Promise((r) => s.once('connect', r));
  s.setNoDelay(true);
  s.write(Buffer.from([KEY[role]])); // the broker learns who this is
  const reader = new FrameReader(onFrame);
  s.on('data', (c: Buffer) => reader.push(c));
  return s;
}

async function main(): Promise<void> {
  if (transport === 'http' && role === 'b') {
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c) => parts.push(c));
      req.on('end', () => {
        const d = decode(Buffer.concat(parts)); // a hop decodes and re-encodes, as baton's does
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(frame(KEY.a, d.reqId));
      });
    });
    server.keepAliveTimeout = 60_000;
    server.listen(Number(arg), '127.0.0.1', () => process.send!({ ready: true }));
    return;
  }
  if (transport === 'http') return httpClient();

  let onReply: (d: Descriptor) => void = () => {};
  const sock = await stream((f) => {
    const d = decode(f);
    if (role === 'b') sock.write(frame(KEY.a, d.reqId));
    else onReply(d);
  });
  process.send!({ ready: true });
  if (role === 'b') return;

  process.on('message', async (m: { cmd: string; n?: number; inflight?: number; ms?: number }) => {
    if (m.cmd === 'latency') {
      const samples: number[] = [];
      for (let i = 0; i < m.n!; i++) {
        const t0 = process.hrtime.bigint();
        await new Promise<void>((resolve) => {
          onReply = () => resolve();
          sock.write(frame(KEY.b, 1));
        });
        samples.push(Number(process.hrtime.bigint() - t0));
      }
      process.send!({ samples });
    } else if (m.cmd === 'saturate') {
      let trips = 0;
      let counted = -1;
      let inFlight = m.inflight!;
      onReply = (d) => {
        trips++;
        if (counted < 0) sock.write(frame(KEY.b, d.reqId));
        // report once every descriptor is back: the next command reuses their slots
        else if (--inFlight === 0) process.send!({ trips: counted });
      };
      for (let i = 0; i < m.inflight!; i++) sock.write(frame(KEY.b, i + 1));
      setTimeout(() => (counted = trips), m.ms);
    }
  });
}

async function httpClient(): Promise<void> {
  const origin = `http://127.0.0.1:${arg}`;
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 256 });
  const trip = async (i: number) => {
    const res = await request(origin + '/hop', { method: 'POST', body: frame(KEY.b, i), dispatcher });
    decode(Buffer.from(await res.body.arrayBuffer()));
  };
  process.send!({ ready: true });
  process.on('message', async (m: { cmd: string; n?: number; inflight?: number; ms?: number }) => {
    if (m.cmd === 'latency') {
      const samples: number[] = [];
      for (let i = 0; i < m.n!; i++) {
        const t0 = process.hrtime.bigint();
        await trip(1);
        samples.push(Number(process.hrtime.bigint() - t0));
      }
      process.send!({ samples });
    } else if (m.cmd === 'saturate') {
      let trips = 0;
      const until = Date.now() + m.ms!;
      await Promise.all(
        [...Array(m.inflight!)].map(async (_, i) => {
          while (Date.now() < until) {
            await trip(i + 1);
            trips++;
          }
        }),
      );
      process.send!({ trips });
    }
  });
}

void main();
