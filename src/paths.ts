// Files baton finds beside its own code, whether it runs from its TypeScript sources (a
// checkout, through tsx) or compiled (dist/, an installed package).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root directory (src/ and dist/ sit right under it): the nearest directory up
 *  from this module with baton's package.json (a bundle of this module lives deeper). */
export const PACKAGE_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir + path.sep;
})();

/** Whether `base` (an import.meta.url) is compiled code: dist/'s modules, or its bundles. */
export function isCompiled(base: string): boolean {
  return /\.c?js$/.test(base);
}

/** A module beside `base` (an import.meta.url), named as in the sources (.ts): its compiled .js
 *  when `base` is compiled code. */
export function sibling(base: string, rel: string): string {
  return fileURLToPath(new URL(isCompiled(base) ? rel.replace(/\.ts$/, '.js') : rel, base));
}

/** A file kept as it is in src/ either way (function modules bundled at run time, templates). */
export function sourceFile(rel: string): string {
  return path.join(PACKAGE_ROOT, 'src', rel);
}
