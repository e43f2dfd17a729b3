// Every bench run in one SQLite database (sql.js: SQLite compiled to WebAssembly, so no
// native build): the run and its machine, each figure with its spread, each measured
// distribution, and the node's CPU and memory sampled during the run.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import initSqlJs, { type Database } from 'sql.js';
import type { SeriesPoint } from './context.ts';
import type { Distribution } from './stats.ts';

const SCHEMA_VERSION = 1;
const SCHEMA = `
create table if not exists runs (
  id integer primary key, started text, finished text, scenarios text, mode text,
  machine text, git text, node text, status text);
create table if not exists results (
  run integer, scenario text, system text, metric text, value real, unit text, better text,
  spread real, reps integer, config text);
create table if not exists distributions (
  run integer, scenario text, system text, metric text, unit text, count integer,
  min real, p50 real, p90 real, p99 real, p999 real, max real, mean real, samples text);
create table if not exists series (
  run integer, scenario text, system text, metric text, unit text, points text);
create table if not exists node_samples (
  run integer, t real, cpu_busy real, mem_used_mib real, load1 real);
`;

export interface Result {
  scenario: string;
  system: string;
  metric: string;
  value: number;
  unit: string;
  better: 'lower' | 'higher';
  spread: number;
  reps: number;
  config?: unknown;
}

export interface DistributionRow extends Distribution {
  scenario: string;
  system: string;
  metric: string;
  unit: string;
  samples: number[];
}

export interface SeriesRow {
  scenario: string;
  system: string;
  metric: string;
  unit: string;
  points: SeriesPoint[];
}

export class Store {
  private constructor(
    private readonly db: Database,
    readonly file: string,
  ) {}

  static async open(file: string): Promise<Store> {
    const SQL = await initSqlJs();
    const exists = existsSync(file);
    const db = exists ? new SQL.Database(readFileSync(file)) : new SQL.Database();
    const version = db.exec('pragma user_version')[0]!.values[0]![0] as number;
    if (exists && version !== SCHEMA_VERSION) {
      throw new Error(`${file} holds bench results in another format (version ${version}, this baton writes ${SCHEMA_VERSION}): move it away or pass --db`);
    }
    db.run(SCHEMA);
    db.run(`pragma user_version = ${SCHEMA_VERSION}`);
    return new Store(db, file);
  }

  beginRun(info: { scenarios: string[]; mode: string; machine: unknown; git: string }): number {
    this.db.run('insert into runs (started, scenarios, mode, machine, git, node, status) values (?, ?, ?, ?, ?, ?, ?)', [
      new Date().toISOString(), info.scenarios.join(','), info.mode, JSON.stringify(info.machine), info.git,
      process.version, 'running',
    ]);
    return this.db.exec('select last_insert_rowid()')[0]!.values[0]![0] as number;
  }

  finishRun(run: number, status: string): void {
    this.db.run('update runs set finished = ?, status = ? where id = ?', [new Date().toISOString(), status, run]);
  }

  addResult(run: number, r: Result): void {
    this.db.run('insert into results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      run, r.scenario, r.system, r.metric, r.value, r.unit, r.better, r.spread, r.reps, JSON.stringify(r.config ?? null),
    ]);
  }

  addDistribution(run: number, d: DistributionRow): void {
    // keep at most 2000 samples, evenly spaced, for plots
    const step = Math.max(1, Math.ceil(d.samples.length / 2000));
    const kept = d.samples.filter((_, i) => i % step === 0);
    this.db.run('insert into distributions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      run, d.scenario, d.system, d.metric, d.unit, d.count, d.min, d.p50, d.p90, d.p99, d.p999, d.max, d.mean, JSON.stringify(kept),
    ]);
  }

  addSeries(run: number, s: SeriesRow): void {
    this.db.run('insert into series values (?, ?, ?, ?, ?, ?)', [run, s.scenario, s.system, s.metric, s.unit, JSON.stringify(s.points)]);
  }

  series(run: number): SeriesRow[] {
    return this.rows<SeriesRow & { points: string }>('select scenario, system, metric, unit, points from series where run = ? order by rowid', [run]).map((s) => ({
      ...s, points: JSON.parse(s.points),
    }));
  }

  addNodeSample(run: number, s: { t: number; cpuBusy: number; memUsedMiB: number; load1: number }): void {
    this.db.run('insert into node_samples values (?, ?, ?, ?, ?)', [run, s.t, s.cpuBusy, s.memUsedMiB, s.load1]);
  }

  results(run: number): Result[] {
    const cols = 'scenario, system, metric, value, unit, better, spread, reps, config';
    return this.rows<Result & { config: string }>(`select ${cols} from results where run = ? order by rowid`, [run]).map((r) => ({
      ...r, config: JSON.parse(r.config),
    }));
  }

  distributions(run: number): DistributionRow[] {
    return this.rows<DistributionRow & { samples: string }>('select * from distributions where run = ?', [run]).map((d) => ({
      ...d, samples: JSON.parse(d.samples),
    }));
  }

  nodeSamples(run: number): { t: number; cpu_busy: number; mem_used_mib: number; load1: number }[] {
    return this.rows('select t, cpu_busy, mem_used_mib, load1 from node_samples where run = ? order by t', [run]);
  }

  runs(): { id: number; started: string; finished: string | null; scenarios: string; mode: string; status: string; git: string; machine: string }[] {
    return this.rows('select id, started, finished, scenarios, mode, status, git, machine from runs order by id');
  }

  /** Writes the database file (atomically: a crash never leaves half a file). */
  save(): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, this.db.export());
    renameSync(`${this.file}.tmp`, this.file);
  }

  private rows<T>(sql: string, params: (string | number)[] = []): T[] {
    const stmt = this.db.prepare(sql);
    stmt.bind(params);
    const out: T[] = [];
    while (stmt.step()) out.push(stmt.getAsObject() as T);
    stmt.free();
    return out;
  }
}
