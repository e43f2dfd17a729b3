// The user-space broker baseline: one process relays every descriptor between peers over
// Unix sockets, routing by the descriptor's first u32 (a sidecar or engine hop). Each peer
// first sends one byte: its key.
import net from 'node:net';
import { FrameReader } from '../../dataplane/framing.ts';

const path = process.argv[2]!;
const peers = new Map<number, net.Socket>();
const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  let reader: FrameReader | undefined;
  sock.on('data', (chunk: Buffer) => {
    if (!reader) {
      peers.set(chunk[0]!, sock);
      reader = new FrameReader((f) => peers.get(f.readUInt32LE(0))?.write(Buffer.from(f)));
      chunk = chunk.subarray(1);
    }
    reader.push(chunk);
  });
});
server.listen(path, () => process.send!({ ready: true }));
