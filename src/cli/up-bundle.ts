// `baton up`'s code as one CommonJS file (dist/up/up.cjs) and V8's code cache of it
// (dist/up/up.cache), both made by npm run build (scripts/bundle.mjs). Node 20 keeps no code
// cache for ES modules: compiled from the cache, the gateway's ~3.7 MB of JavaScript load in
// ~70 ms instead of the ~130 ms the ES module bundle it replaces took (by hand, medians of 3).
// A cache this Node or its flags cannot use is rejected by V8, and the file is compiled as usual.
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const BUNDLE = fileURLToPath(new URL('../up/up.cjs', import.meta.url));
const CACHE = BUNDLE.replace(/\.cjs$/, '.cache');
/** Lets the bundle's code import() as an ES module would (Node 20.12 on; undefined before). */
const MAIN_LOADER = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;

type Up = typeof import('./up.ts');

function compile(cachedData?: Buffer): { script: vm.Script; run(): Up } {
  const script = new vm.Script(Module.wrap(readFileSync(BUNDLE, 'utf8')), {
    filename: BUNDLE,
    cachedData,
    // the few import() calls left in it (OpenTelemetry's exporter loads http this way)
    importModuleDynamically: MAIN_LOADER,
  });
  return {
    script,
    run() {
      const module = { exports: {} as Up };
      (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(BUNDLE), module, BUNDLE, path.dirname(BUNDLE));
      return module.exports;
    },
  };
}

/** The bundle's exports, from its code cache where V8 takes it (`cached`); undefined where
 *  there is no bundle (a checkout running its sources), or where this Node cannot let its code
 *  import() (before 20.12): the ES modules of dist/ serve then. */
export function loadUpBundle(): { up: Up; cached: boolean } | undefined {
  if (!import.meta.url.endsWith('.js') || !existsSync(BUNDLE) || MAIN_LOADER === undefined) return undefined;
  const { script, run } = compile(existsSync(CACHE) ? readFileSync(CACHE) : undefined);
  return { up: run(), cached: script.cachedDataRejected === false };
}

// node dist/cli/up-bundle.js cache: writes the code cache, every function of the bundle compiled
// into it. V8 compiles a function when it is first called, by default: a gateway then compiled
// its scaling and start paths in the middle of its first scale from zero (arrival → the spare
// told to serve: 0.67–0.98 ms lazily, 0.33–0.49 eagerly, by hand). Compiled eagerly, the cache
// is 4.5 MB instead of 0.8 and costs ~10 ms more to load, which the paths it spares make up
// for: `baton up` → first reply did not change (alternated, medians 389 vs 385 ms for
// text-pipeline, 254 vs 258 for one function); the gateway's RSS grows 5 MB (89 vs 84 MiB).
// --lazy is set back before the cache is written: V8 takes a cache only from a process whose
// flags match its own.
if (process.argv[2] === 'cache' && realpathSync(process.argv[1]!) === fileURLToPath(import.meta.url) && MAIN_LOADER !== undefined) {
  v8.setFlagsFromString('--no-lazy');
  const { script, run } = compile();
  v8.setFlagsFromString('--lazy');
  run();
  writeFileSync(CACHE, script.createCachedData());
}
