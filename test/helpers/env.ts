// Whether this machine can run the kernel data plane. Tests that need it skip with the
// typed reason (missing privilege, kernel feature or build); any other failure is a bug
// and is thrown.
import { isEnvironmentError } from '../../src/errors.ts';
import { Sockmap } from '../../src/dataplane/sockmap.ts';
import { Cgroups } from '../../src/isolation/cgroups.ts';

function probe(): string | undefined {
  try {
    new Sockmap().destroy();
    return undefined;
  } catch (err) {
    if (isEnvironmentError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}

export const dataplaneUnavailable = probe();
if (dataplaneUnavailable) console.warn(`[baton] skipping data-plane tests: ${dataplaneUnavailable}`);

/** Why cgroup limits cannot be enforced here (not root, no controllers), or undefined. */
export const cgroupsUnavailable = ((): string | undefined => {
  const cg = Cgroups.open();
  if (typeof cg === 'string') return cg;
  cg.remove();
  return undefined;
})();
if (cgroupsUnavailable) console.warn(`[baton] skipping resource-limit tests: ${cgroupsUnavailable}`);
