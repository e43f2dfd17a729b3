// Writes a large trace: `node large.mjs [functions] [minutes] > large.json`, then
// `baton simulate large.json`. Routes of six functions (the third step a two-way branch whose
// mix flips halfway), Poisson arrivals of 0.5–4 req/s per route, one route in ten bursty. Each
// function's `instances` (what static keeps) is sized for its peak: twice the busy instances
// its share of the route's rate needs, at least one.
const functions = Number(process.argv[2] ?? 1000);
const minutes = Number(process.argv[3] ?? 60);
let seed = 7;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const trace = { durationMs: minutes * 60_000, seed: 1, node: { memoryMiB: 1e9 }, functions: {}, routes: [], arrivals: [] };
for (let r = 0; r * 6 + 6 <= functions; r++) {
  const names = [0, 1, 2, 3, 4, 5].map((k) => `r${r}-f${k}`);
  const perSecond = 0.5 + rand() * 3.5;
  const bursty = rand() < 0.1;
  names.forEach((n, k) => {
    const medianMs = 2 + Math.round(rand() * (k === 3 ? 60 : 15));
    const share = k === 2 || k === 3 ? 0.8 : 1;
    const busy = (perSecond * share * medianMs * 1.2) / 1000; // lognormal σ 0.5: mean ≈ 1.13 × median
    trace.functions[n] = { exec: { kind: 'lognormal', medianMs, sigma: 0.5 }, startMs: 110, instances: Math.max(1, Math.ceil(2 * busy)), maxInstances: 64 };
  });
  trace.routes.push({
    chain: [names[0], names[1], [names[2], names[3]], names[4], names[5]], slo: 1000,
    branches: { 2: [{ atMs: 0, p: [0.8, 0.2] }, { atMs: trace.durationMs / 2, p: [0.2, 0.8] }] },
  });
  trace.arrivals.push({ route: r, rate: [{ atMs: 0, perSecond }], ...(bursty ? { pattern: { onMs: 30_000, offMs: 90_000 } } : {}) });
}
console.log(JSON.stringify(trace));
