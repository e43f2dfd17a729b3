// One clock for every process of a chain: CLOCK_MONOTONIC (process.hrtime) is system-wide,
// so timestamps taken in different processes compare directly.
export function nowUs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}
