// Splits a byte stream into fixed-size descriptors. Under load most reads carry several
// descriptors and some end mid-descriptor, so whole frames are handed out as views of the
// chunk (no copy) and only a split frame is stitched together.
import { DESC_SIZE } from '../descriptor/index.ts';

export class FrameReader {
  private partial = Buffer.alloc(DESC_SIZE);
  private partialLen = 0;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    if (this.partialLen > 0) {
      const take = Math.min(DESC_SIZE - this.partialLen, chunk.length);
      chunk.copy(this.partial, this.partialLen, 0, take);
      this.partialLen += take;
      at = take;
      if (this.partialLen < DESC_SIZE) return;
      this.partialLen = 0;
      this.onFrame(this.partial);
      // the callee may keep the frame: give the next split frame fresh memory
      this.partial = Buffer.alloc(DESC_SIZE);
    }
    for (; at + DESC_SIZE <= chunk.length; at += DESC_SIZE) this.onFrame(chunk.subarray(at, at + DESC_SIZE));
    if (at < chunk.length) {
      chunk.copy(this.partial, 0, at);
      this.partialLen = chunk.length - at;
    }
  }

  /** Bytes of an unfinished descriptor held back. */
  get pending(): number {
    return this.partialLen;
  }
}
