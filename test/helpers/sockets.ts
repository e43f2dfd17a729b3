import type net from 'node:net';

/** Resolves with the next `n` bytes read from `socket`. */
export function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      parts.push(chunk);
      have += chunk.length;
      if (have >= n) {
        socket.off('data', onData);
        socket.off('error', reject);
        const all = Buffer.concat(parts);
        if (all.length > n) socket.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}
