// Reads, validates and compiles a chain file. Every problem is reported at once, each with
// the path of the offending value.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import FindMyWay from 'find-my-way';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { rank } from '../admission/classes.ts';
import { batonError } from '../errors.ts';
import { MAX_FUNCTIONS, MAX_KEYS, MAX_SLOTS, MAX_TOKENS } from '../descriptor/index.ts';
import { geometryProblems } from '../pool/layout.ts';
import { chainFileSchema, FUNCTION_NAME, type ChainFileInput } from './schema.ts';
import { assignKeys, type Deployment } from './deployment.ts';

export function loadChainFile(file: string): Deployment {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw batonError('BATON_ERR_CHAIN_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const where = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0].line}` : '';
    throw batonError('BATON_ERR_CHAIN_FILE', `${file}: YAML syntax error${where}: ${(err as Error).message}`);
  }
  return compileChainFile(doc as ChainFileInput, path.dirname(path.resolve(file)), file);
}

/** Validates a parsed chain file; module paths resolve against `baseDir`. */
export function compileChainFile(doc: ChainFileInput, baseDir: string, label = 'chain file'): Deployment {
  const parsed = chainFileSchema.safeParse(doc);
  const problems: string[] = parsed.success
    ? []
    : parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`);
  if (!parsed.success) throw batonError('BATON_ERR_CHAIN_FILE', `${label}:\n  ${problems.join('\n  ')}`);
  const cf = parsed.data;

  const names = Object.keys(cf.functions);
  if (names.length === 0) problems.push('functions: declare at least one function');
  for (const n of names) {
    if (!FUNCTION_NAME.test(n)) {
      problems.push(`functions.${n}: a function name is lower-case letters, digits and dashes, starting with a letter`);
    }
  }
  const bounds = new Map(
    names.map((n) => {
      const f = cf.functions[n]!;
      const min = f.minInstances ?? f.instances;
      const max = f.maxInstances ?? Math.max(f.instances, min);
      if (min > f.instances) problems.push(`functions.${n}.minInstances: ${min} is more than instances (${f.instances})`);
      if (max < f.instances) problems.push(`functions.${n}.maxInstances: ${max} is less than instances (${f.instances})`);
      if ((min === 0 || f.instances === 0) && (f.binding ?? cf.binding) === 'early') {
        problems.push(`functions.${n}: running no instance (minInstances or instances 0) needs late binding: requests wait in its queue while one starts`);
      }
      if (f.warm > max) problems.push(`functions.${n}.warm: ${f.warm} is more than maxInstances (${max})`);
      if (max * f.concurrency > MAX_TOKENS) {
        problems.push(`functions.${n}: maxInstances × concurrency is ${max * f.concurrency}; at most ${MAX_TOKENS}`);
      }
      const module = path.resolve(baseDir, f.module);
      if (!existsSync(module)) problems.push(`functions.${n}.module: no such file ${module}`);
      return [n, { min, max, module }] as const;
    }),
  );

  // Security domains: a route's own, or the one it names; each gets its own pool and its own
  // instances of the functions its routes use (a function in two domains runs twice).
  const domainNames = [...new Set(cf.routes.map(domainOf))];
  const slotCount = cf.pool.slots;
  const domains = domainNames.map((name, id) => ({ id, name, slotBase: id * slotCount }));
  const units: { name: string; domain: number }[] = [];
  problems.push(...callProblems(cf.functions));
  for (const d of domains) {
    const used = withCallees(cf.routes.filter((r) => domainOf(r) === d.name).flatMap((r) => r.chain.flat()), cf.functions);
    for (const n of names) if (used.has(n)) units.push({ name: n, domain: d.id });
  }
  if (units.length > MAX_FUNCTIONS) {
    problems.push(`routes: their domains need ${units.length} function instances sets; at most ${MAX_FUNCTIONS} (group routes with domain:)`);
  }
  const keys = assignKeys(units.map((u) => bounds.get(u.name)!.max));
  const totalKeys = keys.reduce((s, k) => s + k.length, 1);
  if (totalKeys > MAX_KEYS) problems.push(`functions: ${totalKeys - 1} instances in all; at most ${MAX_KEYS - 1}`);
  const repeated = new Set(units.filter((u, i) => units.findIndex((v) => v.name === u.name) !== i).map((u) => u.name));
  const functions = units.map((u, id) => {
    const f = cf.functions[u.name]!;
    const b = bounds.get(u.name)!;
    return {
      id, name: u.name, domain: u.domain, label: repeated.has(u.name) ? `${u.name}@${domainNames[u.domain]}` : u.name,
      module: b.module, instances: f.instances, minInstances: b.min, maxInstances: b.max,
      spares: Math.min(f.spares ?? (b.max > f.instances ? 1 : 0), b.max - b.min),
      concurrency: f.concurrency, binding: f.binding ?? cf.binding, queueDepth: f.queueDepth, env: f.env, keys: keys[id]!,
      memory: f.memory, pids: f.pids, cpu: f.cpu, spinUs: f.spinUs, calls: [] as number[],
      warm: f.warm, idleAfterMs: f.idleAfterMs, target: f.target ?? f.concurrency * cf.gateway.scaler.targetUtilization,
    };
  });
  // the node budget holds what starts with the gateway
  const nodeMemory = cf.node.memory ?? Math.floor(os.totalmem() * 0.8);
  const atStart = functions.reduce((sum, f) => sum + f.instances * f.memory, 0);
  if (atStart > nodeMemory) {
    problems.push(`node.memory: ${nodeMemory} bytes cannot hold the instances started with the gateway (${atStart} bytes at their functions' memory)`);
  }
  const unitOf = new Map(functions.map((f) => [`${f.domain} ${f.name}`, f.id]));
  for (const f of functions) f.calls = cf.functions[f.name]!.calls.map((c) => unitOf.get(`${f.domain} ${c}`)!).filter((id) => id !== undefined);

  const seen = new Set<string>();
  // the gateway's router (fastify's): a path it would refuse is a chain-file problem
  const router = FindMyWay();
  const chains = cf.routes.map((route, r) => {
    const where = `routes.${r}`;
    const id = `${route.method} ${route.path}`;
    if (seen.has(id)) {
      problems.push(`${where}: duplicate route ${id}`);
    } else if (route.path === RESERVED_PREFIX || route.path.startsWith(`${RESERVED_PREFIX}/`)) {
      problems.push(`${where}.path: ${RESERVED_PREFIX}/ is reserved for the gateway's own routes`);
    } else {
      try {
        router.on(route.method as 'GET', route.path, () => {});
      } catch (err) {
        problems.push(`${where}.path: ${(err as Error).message}`);
      }
    }
    seen.add(id);
    if (Array.isArray(route.chain[0])) problems.push(`${where}.chain.0: the first step must be one function, not a branch`);
    const domain = domainNames.indexOf(domainOf(route));
    const steps = route.chain.map((step, s) =>
      (Array.isArray(step) ? step : [step]).map((fn, b) => {
        const unit = unitOf.get(`${domain} ${fn}`);
        if (!bounds.has(fn)) {
          const at = Array.isArray(step) ? `${where}.chain.${s}.${b}` : `${where}.chain.${s}`;
          problems.push(`${at}: unknown function '${fn}' (declared: ${names.join(', ') || 'none'})`);
        }
        return unit ?? -1;
      }),
    );
    return { id: r, domain, steps };
  });

  problems.push(...geometryProblems({ slotSize: cf.pool.slotSize, slotCount }));
  if (domains.length * slotCount > MAX_SLOTS) {
    problems.push(`pool.slots: ${domains.length} domains × ${slotCount} slots is more than ${MAX_SLOTS}: lower pool.slots or group routes with domain:`);
  }
  if (problems.length) throw batonError('BATON_ERR_CHAIN_FILE', `${label}:\n  ${problems.join('\n  ')}`);

  return {
    functions,
    chains,
    domains,
    routes: cf.routes.map((r, i) => ({ method: r.method, path: r.path, chainId: i, slo: r.slo, classRank: rank(r.class) })),
    pool: { slotSize: cf.pool.slotSize, slotCount },
    isolation: cf.isolation,
    node: { memory: nodeMemory },
    gateway: cf.gateway,
  };
}

/** `calls` naming unknown functions, a function itself, or forming a cycle (a caller waits on
 *  its callees: a cycle could leave every instance waiting on another). */
function callProblems(fns: Record<string, { calls: string[] }>): string[] {
  const problems: string[] = [];
  for (const [n, f] of Object.entries(fns)) {
    f.calls.forEach((c, i) => {
      if (!fns[c]) problems.push(`functions.${n}.calls.${i}: unknown function '${c}'`);
    });
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 'done' || !fns[n]) return;
    if (state.get(n) === 'visiting') {
      problems.push(`functions.${path[0]}.calls: calls form a cycle: ${[...path.slice(path.indexOf(n)), n].join(' → ')}`);
      return;
    }
    state.set(n, 'visiting');
    for (const c of fns[n]!.calls) visit(c, [...path, c]);
    state.set(n, 'done');
  };
  for (const n of Object.keys(fns)) visit(n, [n]);
  return problems;
}

/** `names` and every function they may call, transitively. */
function withCallees(names: string[], fns: Record<string, { calls: string[] }>): Set<string> {
  const out = new Set<string>();
  const add = (n: string): void => {
    if (out.has(n)) return;
    out.add(n);
    for (const c of fns[n]?.calls ?? []) add(c);
  };
  names.forEach(add);
  return out;
}

/** A route's security domain: the one it names, or its own. */
function domainOf(route: { method: string; path: string; domain?: string }): string {
  return route.domain ?? `${route.method} ${route.path}`;
}

/** Paths the gateway keeps for its own routes (status, scaling). */
export const RESERVED_PREFIX = '/_baton';
