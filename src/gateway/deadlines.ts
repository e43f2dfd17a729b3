// Deadlines that all run the same length (a request's timeout, its body's, its response's):
// the order they start in is the order they fall in, so a ring of (id, start number, time) and
// one timer at the oldest does for all — no timer per request on the hot path. An entry whose
// request is long done costs 12 bytes until its time passes; `expire` decides whether it still
// means anything (the start number tells an id's earlier use from a later one: ids come back).
export class Deadlines {
  private ids = new Uint32Array(1024);
  /** Each entry's start number: an id can come back (random, unique only among open requests). */
  private seqs = new Uint32Array(1024);
  private at = new Float64Array(1024);
  private head = 0;
  private size = 0;
  private timer?: NodeJS.Timeout;
  private armedFor = Infinity;

  constructor(private readonly expire: (id: number, seq: number) => void) {}

  add(id: number, seq: number, deadline: number): void {
    if (this.size === this.ids.length) this.grow();
    const i = (this.head + this.size++) & (this.ids.length - 1);
    this.ids[i] = id;
    this.seqs[i] = seq;
    this.at[i] = deadline;
    if (this.size === 1) this.arm();
  }

  private grow(): void {
    const n = this.ids.length * 2;
    const [ids, seqs, at] = [new Uint32Array(n), new Uint32Array(n), new Float64Array(n)];
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (this.ids.length - 1);
      ids[k] = this.ids[i]!;
      seqs[k] = this.seqs[i]!;
      at[k] = this.at[i]!;
    }
    [this.ids, this.seqs, this.at, this.head] = [ids, seqs, at, 0];
  }

  private arm(): void {
    if (this.size === 0) return;
    const next = this.at[this.head]!;
    if (this.timer && next >= this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - performance.now()));
    this.timer.unref?.();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    while (this.size > 0 && this.at[this.head]! <= now) {
      const [id, seq] = [this.ids[this.head]!, this.seqs[this.head]!];
      this.head = (this.head + 1) & (this.ids.length - 1);
      this.size--;
      this.expire(id, seq);
    }
    this.arm();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.size = 0;
  }
}
