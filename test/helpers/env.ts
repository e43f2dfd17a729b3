// Whether this machine can run the data plane the suite runs on. Tests that need it skip with
// the typed reason (missing privilege, kernel feature or build); any other failure is a bug
// and is thrown. BATON_DATAPLANE=broker runs the whole suite on the user-space broker (CI
// runs both passes): then only the addon is needed.
import { isEnvironmentError } from '../../src/errors.ts';
import { Sockmap } from '../../src/dataplane/sockmap.ts';
import { Broker } from '../../src/dataplane/broker.ts';
import { Cgroups } from '../../src/isolation/cgroups.ts';

/** The data plane the gateways of this run use. */
export const suiteDataplane: 'sockmap' | 'broker' = process.env.BATON_DATAPLANE === 'broker' ? 'broker' : 'sockmap';

function probe(): string | undefined {
  try {
    (suiteDataplane === 'broker' ? new Broker() : new Sockmap()).destroy();
    return undefined;
  } catch (err) {
    if (isEnvironmentError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}

export const dataplaneUnavailable = probe();
/** Why the kernel's data plane cannot be tested in this run: it is the broker pass, or eBPF is
 *  missing (tests of the kernel program itself). */
export const kernelUnavailable = suiteDataplane === 'broker' ? 'the broker pass (BATON_DATAPLANE=broker) tests the broker' : dataplaneUnavailable;
if (dataplaneUnavailable) console.warn(`[baton] skipping data-plane tests: ${dataplaneUnavailable}`);

/** Why cgroup limits cannot be enforced here (not root, no controllers), or undefined. */
let busyMoves = false;
export const cgroupsUnavailable = ((): string | undefined => {
  const cg = Cgroups.open();
  if (typeof cg === 'string') return cg;
  busyMoves = cg.movesBusy;
  cg.remove();
  return undefined;
})();
if (cgroupsUnavailable) console.warn(`[baton] skipping resource-limit tests: ${cgroupsUnavailable}`);
/** Why a busy spinning instance cannot be moved to a normal cpu group here, or undefined. */
export const busyMovesUnavailable =
  cgroupsUnavailable ?? (busyMoves ? undefined : 'spinning instances move between cpu groups only with cgroup v1 and idle groups (Linux 5.15)');
