// Splits a byte stream into fixed-size descriptors. Under load most reads carry several
// descriptors, so whole frames are handed out as views of the chunk (no copy) and only a
// frame split across reads is stitched together. The kernel delivers only whole, checked
// descriptors, but a reader never trusts that: a frame without the descriptor signature
// (magic and version) means the stream lost alignment, and the reader skips ahead to the
// next signature instead of misreading everything after it.
import { DESC_MAGIC, DESC_SIZE, DESC_VERSION, F } from '../descriptor/index.ts';

const SIG_0 = DESC_MAGIC & 0xff;
const SIG_1 = DESC_MAGIC >> 8;

function signed(b: Buffer, at: number): boolean {
  return b[at + F.magic] === SIG_0 && b[at + F.magic + 1] === SIG_1 && b[at + F.version] === DESC_VERSION;
}

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  private rest: Buffer = EMPTY;
  /** Bytes skipped to regain alignment, in all. */
  skipped = 0;

  constructor(
    private readonly onFrame: (frame: Buffer) => void,
    /** Told how many bytes were skipped each time the stream lost alignment. */
    private readonly onGarbage: (bytes: number) => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.rest.length > 0) {
      if (this.rest.length + chunk.length < DESC_SIZE) {
        this.rest = Buffer.concat([this.rest, chunk]);
        return;
      }
      // stitch just the split frame, into fresh memory: the callee may keep it
      const need = DESC_SIZE - this.rest.length;
      const frame = Buffer.concat([this.rest, chunk.subarray(0, need)]);
      this.rest = EMPTY;
      if (signed(frame, 0)) {
        this.onFrame(frame);
        data = chunk.subarray(need);
      } else {
        data = Buffer.concat([frame, chunk.subarray(need)]); // realign over the joined bytes
      }
    }
    let at = 0;
    while (data.length - at >= DESC_SIZE) {
      if (signed(data, at)) {
        this.onFrame(data.subarray(at, at + DESC_SIZE));
        at += DESC_SIZE;
        continue;
      }
      const from = at;
      for (at++; at + F.version < data.length && !signed(data, at); at++);
      this.skipped += at - from;
      this.onGarbage(at - from);
    }
    if (at < data.length) this.rest = Buffer.from(data.subarray(at));
  }

  /** Bytes of an unfinished descriptor held back. */
  get pending(): number {
    return this.rest.length;
  }
}
