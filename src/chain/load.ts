// Reads, validates and compiles a chain file. Every problem is reported at once, each with
// the path of the offending value.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import FindMyWay from 'find-my-way';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { batonError } from '../errors.ts';
import { MAX_FUNCTIONS, MAX_KEYS, MAX_TOKENS } from '../descriptor/index.ts';
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
  const idOf = new Map(names.map((n, i) => [n, i]));
  if (names.length === 0) problems.push('functions: declare at least one function');
  if (names.length > MAX_FUNCTIONS) problems.push(`functions: ${names.length} declared; at most ${MAX_FUNCTIONS}`);
  for (const n of names) {
    if (!FUNCTION_NAME.test(n)) {
      problems.push(`functions.${n}: a function name is lower-case letters, digits and dashes, starting with a letter`);
    }
  }
  const bounds = names.map((n) => {
    const f = cf.functions[n]!;
    const min = f.minInstances ?? f.instances;
    const max = f.maxInstances ?? Math.max(f.instances, min);
    if (min > f.instances) problems.push(`functions.${n}.minInstances: ${min} is more than instances (${f.instances})`);
    if (max < f.instances) problems.push(`functions.${n}.maxInstances: ${max} is less than instances (${f.instances})`);
    if (max * f.concurrency > MAX_TOKENS) {
      problems.push(`functions.${n}: maxInstances × concurrency is ${max * f.concurrency}; at most ${MAX_TOKENS}`);
    }
    return { min, max };
  });
  const keys = assignKeys(bounds.map((b) => b.max));
  const totalKeys = keys.reduce((s, k) => s + k.length, 1);
  if (totalKeys > MAX_KEYS) problems.push(`functions: ${totalKeys - 1} instances in all; at most ${MAX_KEYS - 1}`);

  const functions = names.map((name, id) => {
    const module = path.resolve(baseDir, cf.functions[name]!.module);
    if (!existsSync(module)) problems.push(`functions.${name}.module: no such file ${module}`);
    const f = cf.functions[name]!;
    return {
      id, name, module, instances: f.instances, minInstances: bounds[id]!.min, maxInstances: bounds[id]!.max,
      concurrency: f.concurrency, binding: f.binding ?? cf.binding, queueDepth: f.queueDepth, env: f.env, keys: keys[id]!,
      memory: f.memory, pids: f.pids, cpu: f.cpu,
    };
  });

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
    const steps = route.chain.map((step, s) =>
      (Array.isArray(step) ? step : [step]).map((fn, b) => {
        const fid = idOf.get(fn);
        if (fid === undefined) {
          const at = Array.isArray(step) ? `${where}.chain.${s}.${b}` : `${where}.chain.${s}`;
          problems.push(`${at}: unknown function '${fn}' (declared: ${names.join(', ') || 'none'})`);
        }
        return fid ?? -1;
      }),
    );
    return { id: r, steps };
  });

  problems.push(...geometryProblems({ slotSize: cf.pool.slotSize, slotCount: cf.pool.slots }));
  if (problems.length) throw batonError('BATON_ERR_CHAIN_FILE', `${label}:\n  ${problems.join('\n  ')}`);

  return {
    functions,
    chains,
    routes: cf.routes.map((r, i) => ({ method: r.method, path: r.path, chainId: i })),
    pool: { slotSize: cf.pool.slotSize, slotCount: cf.pool.slots },
    isolation: cf.isolation,
    gateway: cf.gateway,
  };
}

/** Paths the gateway keeps for its own routes (status, scaling). */
export const RESERVED_PREFIX = '/_baton';
