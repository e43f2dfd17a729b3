// Listing stored runs and comparing two of them figure by figure.
import Table from 'cli-table3';
import { batonError } from '../errors.ts';
import { Store } from './store.ts';
import { formatValue, ratioText } from './table.ts';

export async function listRuns(db: string): Promise<void> {
  const store = await Store.open(db);
  const table = new Table({ head: ['run', 'started', 'mode', 'scenarios', 'status', 'git'], style: { head: [], border: [] } });
  for (const r of store.runs()) table.push([r.id, r.started, r.mode, r.scenarios, r.status, r.git]);
  console.log(store.runs().length ? table.toString() : `no runs in ${db}`);
}

export async function compareRuns(db: string, a: number, b: number): Promise<void> {
  const store = await Store.open(db);
  const ra = store.results(a);
  const rb = store.results(b);
  if (!ra.length || !rb.length) throw batonError('BATON_ERR_NO_SUCH_RUN', `run ${ra.length ? b : a} has no results in ${db} (baton bench list shows the runs)`);
  const table = new Table({ head: ['scenario', 'system', 'figure', `run ${a}`, `run ${b}`, `${b} vs ${a}`], style: { head: [], border: [] } });
  for (const x of ra) {
    const y = rb.find((r) => r.scenario === x.scenario && r.system === x.system && r.metric === x.metric && JSON.stringify(r.config) === JSON.stringify(x.config));
    if (!y) continue;
    table.push([x.scenario, x.system, x.metric, formatValue(x.value, x.unit), formatValue(y.value, y.unit), ratioText(y.value, x.value, x.better)]);
  }
  console.log(table.toString());
}
