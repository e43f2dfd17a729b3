// Files baton finds beside its own code, whether it runs from its TypeScript sources (a
// checkout, through tsx) or compiled (dist/, an installed package).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root directory (src/ and dist/ both sit right under it). */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A module beside `base` (an import.meta.url), named as in the sources (.ts): its compiled .js
 *  when `base` is compiled code. */
export function sibling(base: string, rel: string): string {
  return fileURLToPath(new URL(base.endsWith('.js') ? rel.replace(/\.ts$/, '.js') : rel, base));
}

/** A file kept as it is in src/ either way (function modules bundled at run time, templates). */
export function sourceFile(rel: string): string {
  return path.join(PACKAGE_ROOT, 'src', rel);
}
