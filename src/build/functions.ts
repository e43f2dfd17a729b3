// Builds what workers run, once, when the gateway starts: the worker runtime and every function
// module, bundled by esbuild into one directory that the gateway owns and workers can only read.
// The runtime (the worker and baton's SDK) does not depend on the chain file: an installed,
// compiled baton has it prebuilt (`npm run build` → dist/runtime) and only copies it; a checkout
// running its sources builds it here. Each function is bundled with `baton/sdk` left as an
// import of the runtime's own SDK module, wherever the function lives on disk, so the runtime
// and the functions share one copy of it. Workers then run plain JavaScript: no transpiler at
// run time, no loader thread, and no compile cache that one function could write for another
// to run.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop, type BuildOptions, type Message, type Metafile, type Plugin } from 'esbuild';
import type { Deployment } from '../chain/index.ts';
import { batonError } from '../errors.ts';
import { ADDON_PATH } from '../native/index.ts';
import { isCompiled, sibling } from '../paths.ts';

/** baton's own code (src/, or dist/ when compiled): never a function's source to watch. */
const CODE = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const WORKER_ENTRY = sibling(import.meta.url, '../worker/main.ts');
const SDK_ENTRY = sibling(import.meta.url, '../sdk/index.ts');
/** The runtime `npm run build` bundled (only beside compiled code: dist/runtime). */
const PREBUILT = isCompiled(import.meta.url) ? sibling(import.meta.url, '../runtime/') : undefined;
/** One copy of the SDK for everything baton bundles, wherever the importing file lives. */
export const SDK_ALIASES = { 'baton/sdk': sibling(import.meta.url, '../sdk/index.ts'), 'baton/testing': sibling(import.meta.url, '../sdk/testing.ts') };

export interface FunctionBuild {
  /** The directory (root-owned when the gateway is root; 0755, files 0644). */
  dir: string;
  /** The worker runtime's entry. */
  worker: string;
  /** A copy of the native addon: workers load it from here, wherever baton is installed (a
   *  home directory workers cannot enter, say). */
  addon: string;
  /** Each function's bundle, by function name. */
  modules: Map<string, string>;
  /** A digest of each function's bundle (its imports included), by function name. */
  digests: Map<string, string>;
  /** The functions whose bundles compare strings by locale: their processes warm ICU's
   *  collator up before they serve (~10 ms; worker/warmup.ts), the others need not. */
  collates: Set<string>;
  /** The source files the functions were built from (not baton's, not node_modules'). */
  sources: string[];
  /** Deletes the directory. */
  remove(): void;
}

/** Bundles the worker runtime and baton's SDK into `outdir` (worker.mjs, sdk.mjs and the chunks
 *  they share). */
export async function buildRuntime(outdir: string): Promise<void> {
  await bundle({ worker: WORKER_ENTRY, sdk: SDK_ENTRY }, outdir, { splitting: true });
}

/** A function's `baton/sdk`: the runtime's SDK module, one directory up from functions/. */
const sharedSdk: Plugin = {
  name: 'baton-sdk',
  setup(b) {
    b.onResolve({ filter: /^baton\/sdk$/ }, () => ({ path: '../sdk.mjs', external: true }));
  },
};

/** What in a bundle uses ICU's collator. */
const COLLATES = /\blocaleCompare\b|\bCollator\b/;

/** Bundles the runtime and `deployment`'s functions; BATON_ERR_BUILD lists what does not build. */
export async function buildFunctions(deployment: Pick<Deployment, 'functions'>): Promise<FunctionBuild> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-build-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const names = [...new Set(deployment.functions.map((f) => f.name))];
  const entryPoints: Record<string, string> = {};
  for (const name of names) entryPoints[`functions/${name}`] = deployment.functions.find((f) => f.name === name)!.module;
  let meta: Metafile;
  try {
    if (PREBUILT && existsSync(path.join(PREBUILT, 'worker.mjs'))) cpSync(PREBUILT, dir, { recursive: true });
    else await buildRuntime(dir);
    meta = await bundle(entryPoints, dir, { plugins: [sharedSdk], alias: { 'baton/testing': SDK_ALIASES['baton/testing'] } });
  } catch (err) {
    remove();
    throw err;
  }
  const addon = path.join(dir, 'baton.node');
  try {
    copyFileSync(ADDON_PATH, addon);
  } catch (err) {
    remove();
    throw batonError('BATON_ERR_NOT_BUILT', `cannot copy ${ADDON_PATH}`, { cause: err });
  }
  readOnlyForOthers(dir);
  const code = new Map(names.map((n) => [n, readFileSync(path.join(dir, 'functions', `${n}.mjs`))]));
  return {
    dir,
    worker: path.join(dir, 'worker.mjs'),
    addon,
    modules: new Map(names.map((n) => [n, path.join(dir, 'functions', `${n}.mjs`)])),
    // a bundle's own bytes change when any of its imports does (baton's SDK aside)
    digests: new Map(names.map((n) => [n, createHash('sha256').update(code.get(n)!).digest('hex')])),
    collates: new Set(names.filter((n) => COLLATES.test(code.get(n)!.toString('latin1')))),
    sources: Object.keys(meta.inputs)
      .map((f) => path.resolve(f))
      .filter((f) => !f.startsWith(CODE) && !f.split(path.sep).includes('node_modules')),
    remove,
  };
}

/** Bundles `entryPoints` into `outdir` as Node ESM (.mjs) with source maps (stack traces point at
 *  the user's own source) and baton's SDK; BATON_ERR_BUILD names each file and line that fails. */
export async function bundle(entryPoints: Record<string, string>, outdir: string, extra: BuildOptions = {}): Promise<Metafile> {
  try {
    const result = await build({
      entryPoints,
      outdir,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outExtension: { '.js': '.mjs' },
      sourcemap: 'linked',
      alias: SDK_ALIASES,
      // CommonJS dependencies bundled into ESM still call require() for Node's built-ins
      banner: { js: "import { createRequire as __batonRequire } from 'node:module'; const require = __batonRequire(import.meta.url);" },
      logLevel: 'silent',
      metafile: true,
      ...extra,
    });
    return result.metafile!;
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors ?? [];
    const lines = errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text));
    throw batonError('BATON_ERR_BUILD', lines.length ? lines.join('\n  ') : (err as Error).message);
  } finally {
    // esbuild's service process would stay for the gateway's life (its memory, its idle
    // wake-ups); the next build starts a new one
    await stop();
  }
}

/** Directories 0755 and files 0644: every worker reads, only the owner writes. */
function readOnlyForOthers(p: string): void {
  chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) readOnlyForOthers(path.join(p, e));
}
