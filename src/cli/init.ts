// `baton init <dir>`: a function project that runs with `baton up`, type-checks with plain
// `tsc` and tests with `baton test`. In a new or empty directory it writes a package.json that
// depends on this baton (a file: path to the package running now); in a directory where the
// user already ran `npm init` / `npm install <baton tarball>`, it adds what is missing to theirs.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { batonError } from '../errors.ts';
import { PACKAGE_ROOT, sourceFile } from '../paths.ts';

const TEMPLATES = sourceFile('cli/scaffold/');
/** What a fresh `npm init`, `npm install baton` or an editor may already have put there. */
const HARMLESS = new Set(['.git', '.gitignore', 'README.md', 'LICENSE', 'package.json', 'package-lock.json', 'node_modules']);
/** The test script `npm init` writes: a placeholder, not the user's. */
const NPM_PLACEHOLDER = /^echo "Error: no test specified"/;

interface PackageJson {
  name?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [k: string]: unknown;
}

export function scaffold(dir: string): void {
  const target = path.resolve(dir);
  if (existsSync(target)) {
    const extra = readdirSync(target).filter((f) => !HARMLESS.has(f));
    if (extra.length) throw batonError('BATON_ERR_INIT', `${target} is not empty (${extra.slice(0, 5).join(', ')}); choose a new or empty directory`);
  }
  const files: Record<string, string> = {
    'package.json': `${JSON.stringify(packageJson(target), null, 2)}\n`,
    'chain.yaml': template('chain.yaml'),
    'functions/greet.ts': template('greet.ts'),
    'functions/shout.ts': template('shout.ts'),
    'test/greet.test.ts': template('greet.test.ts'),
    'tsconfig.json': template('tsconfig.json'),
  };
  if (!existsSync(path.join(target, '.gitignore'))) files['.gitignore'] = 'node_modules/\n';
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
    writeFileSync(path.join(target, file), text);
  }
  const rel = path.relative(process.cwd(), target) || '.';
  console.log(
    [
      `baton: a function project in ${rel}:`,
      ...Object.keys(files).map((f) => `  ${f}`),
      'next:',
      rel === '.' ? '  npm install' : `  cd ${rel} && npm install`,
      '  npx tsc                        # type-check',
      '  npx baton test                 # unit tests, no gateway',
      '  sudo npx baton up chain.yaml   # serve (eBPF needs root: see deploy/baton.service)',
      "  curl --data 'world' http://127.0.0.1:8080/greet",
    ].join('\n'),
  );
}

/** The project's package.json: a new one, or the user's with what is missing added (their own
 *  baton dependency, e.g. a tarball they installed, is kept). */
function packageJson(target: string): PackageJson {
  const file = path.join(target, 'package.json');
  const ours = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as Required<PackageJson>;
  const pkg: PackageJson = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as PackageJson)
    : { name: path.basename(target).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '') || 'functions', private: true };
  const scripts = (pkg.scripts ??= {});
  for (const [k, v] of Object.entries({ start: 'baton up chain.yaml', test: 'baton test', typecheck: 'tsc' })) {
    if (!scripts[k] || NPM_PLACEHOLDER.test(scripts[k])) scripts[k] = v;
  }
  if (!pkg.dependencies?.[ours.name!] && !pkg.devDependencies?.[ours.name!]) {
    (pkg.dependencies ??= {})[ours.name!] = `file:${PACKAGE_ROOT.replace(/\/$/, '')}`;
  }
  const dev = (pkg.devDependencies ??= {});
  for (const d of ['typescript', '@types/node']) dev[d] ??= ours.devDependencies[d]!;
  return pkg;
}

function template(name: string): string {
  return readFileSync(path.join(TEMPLATES, name), 'utf8');
}
