/**
 * Benchmark harness: times viva's real job (commit, re-commit, incremental commit, checkout, repository size, memory) on
 * real Debian root filesystems, side by side with borg 1.2 and restic 0.14 and a floor (tar | zstd, cp -a), in one run,
 * and prints one markdown table. Run with `npm run bench` (`node --import tsx test/bench/run.ts`); see
 * docs/benchmarks.md. It needs the corpus ($CORPUS, default /var/tmp/viva-corpus) and takes 10–15 minutes: never run
 * it in CI.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { STAT_CACHE_FILE } from '../../src/store/stat-cache.js';
import {
  type Exec, type SampledExec, duBytes, duBytesExcluding, must, fmtBytes, fmtMB, fmtSecs, loadAverage, median, rmrf, syncDisks, timed,
  timedShell, timedWithRss,
} from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/run.js');
const BUILD_SCRIPT = path.resolve(ROOT, '../shared/corpus/build-debian.sh');

const MEASURES = ['commit', 'recommit', 'incremental', 'size', 'checkout', 'rss', 'big', 'huge', 'disk', 'xfs', 'inspect', 'sync', 'cli', 'derive', 'packages', 'merge', 'nbd', 'web', 's3'] as const;
type MeasureName = (typeof MEASURES)[number];
const TREES_NEEDED: Record<MeasureName, string[]> = {
  commit: ['base'], recommit: ['base'], incremental: ['base', 'base2'], size: ['min', 'base', 'web', 'base2'],
  checkout: ['base'], rss: ['web'], big: [], huge: [], disk: ['base', 'images/base.qcow2'], xfs: ['base'],
  inspect: ['min', 'base', 'web', 'base2'],
  sync: ['min', 'base', 'web', 'base2'],
  cli: ['min', 'base', 'web', 'base2'],
  derive: ['base', 'base2', 'images/base.qcow2'],
  packages: ['base', 'cache'],
  merge: ['base', 'cache'],
  nbd: ['images/base.qcow2'],
  web: ['base', 'base2'],
  s3: ['base', 'base2', 'web'],
};

const DEFAULT_CORPUS = '/var/tmp/viva-corpus';
const DEFAULT_WORK = '/var/tmp/viva-bench';
const DEFAULT_RUNS = 3;
const DEFAULT_HEAVY_RUNS = 1;
const LOAD_WARN = 0.5;
const MB = 1e6;
const GiB = 1024 ** 3;
// targets from the issues (issue 19 tightened commit, re-commit, memory, the disk checkout and push, and added cli)
const TARGET_COMMIT_VS_BORG = 0.8;
const TARGET_RECOMMIT_VS_RESTIC = 4;
const TARGET_CHECKOUT_VS_CP = 1.2;
const TARGET_RSS = 300 * MB;
const TARGET_RAW_CHECKOUT_VS_QEMU = 2;
const TARGET_PUSH_VS_RSYNC = 1.5;
const TARGET_CLI_VS_NODE = 2.5;
const TARGET_SPARSE_GROWTH = 1 * MB;
const TARGET_RANDOM_GROWTH_FACTOR = 1.01;
/** A 10 GiB file's peak RSS against a 1 GiB file's, each into a new repository: what "constant memory" is held to. */
const TARGET_HUGE_VS_GIB = 1.25;
const TARGET_XFS_VS_EXT4 = 1.2;
const TARGET_WEB_NAMESPACE_MS = 200;
const TARGET_WEB_COMPARE_MS = 300;
const TARGET_WEB_DIRECTORY_MS = 200;
const TARGET_S3_COMMIT_VS_LOCAL = 1.5;
const TARGET_S3_CLONE_VS_PATH = 1.5;
const TARGET_S3_CONCURRENT_VS_SLOWER = 1.2;
const TARGET_S3_READ_VS_LOCAL = 1.1;

const USAGE = `usage: node --import tsx test/bench/run.ts [--only NAME[,NAME]] [--runs N] [--heavy-runs N] [--work DIR] [--json FILE]

  --only        subset of: ${MEASURES.join(', ')} (default: all)
  --runs        runs of the cheap measures (recommit, checkout, floors); default ${DEFAULT_RUNS}
  --heavy-runs  runs of the expensive measures (commit base); default ${DEFAULT_HEAVY_RUNS}
  --work        work directory, removed at the start; default ${DEFAULT_WORK}
  --json        also write the results as JSON to FILE
  environment:  CORPUS (default ${DEFAULT_CORPUS}) holding min, base, web, base2`;

interface Options {
  corpus: string;
  work: string;
  runs: number;
  heavyRuns: number;
  json?: string;
  only: MeasureName[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      only: { type: 'string' }, runs: { type: 'string' }, 'heavy-runs': { type: 'string' }, work: { type: 'string' },
      json: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const count = (v: string | undefined, dflt: number, name: string) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) usageError(`--${name} must be a positive integer, not '${v}'`);
    return n;
  };
  let only: MeasureName[] = [...MEASURES];
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const n of names) if (!(MEASURES as readonly string[]).includes(n)) usageError(`unknown measure '${n}'`);
    only = MEASURES.filter((m) => names.includes(m));
  }
  const work = path.resolve(values.work ?? DEFAULT_WORK);
  const corpus = path.resolve(process.env.CORPUS || DEFAULT_CORPUS);
  if (work === '/' || work === path.resolve(os.homedir()) || corpus.startsWith(work + '/') || corpus === work || ROOT.startsWith(work + '/')) {
    usageError(`refusing to use '${work}' as the work directory: it is removed at the start`);
  }
  return {
    corpus, work, only, runs: count(values.runs, DEFAULT_RUNS, 'runs'),
    heavyRuns: count(values['heavy-runs'], DEFAULT_HEAVY_RUNS, 'heavy-runs'),
    ...(values.json !== undefined ? { json: path.resolve(values.json) } : {}),
  };
}

function usageError(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------------------
// results

/** One cell of the table, with the raw numbers kept for --json. */
interface Cell {
  text: string;
  /** The number the target is checked against (best run for times). */
  value?: number;
  runs?: number[];
  best?: number;
  median?: number;
  error?: string;
  [extra: string]: unknown;
}

interface Row {
  id: string;
  measure: string;
  unit: string;
  viva: Cell;
  borg: Cell;
  restic: Cell;
  floor: Cell;
  target: string;
  met: string;
}

const NONE: Cell = { text: '—' };

function errorCell(error: string): Cell {
  return { text: `error: ${error}`, error };
}

/** Times of N runs: "best / median" when N > 1. */
function timeCell(execs: Exec[], extra: Record<string, unknown> = {}): Cell {
  const bad = execs.find((e) => !e.ok);
  if (bad) return errorCell(bad.error ?? 'failed');
  if (execs.length === 0) return NONE;
  const runs = execs.map((e) => e.secs);
  const best = Math.min(...runs);
  const med = median(runs);
  return { text: runs.length > 1 ? `${fmtSecs(best)} / ${fmtSecs(med)}` : fmtSecs(best), value: best, best, median: med, runs, ...extra };
}

function bytesCell(bytes: number, extra: Record<string, unknown> = {}): Cell {
  return { text: fmtMB(bytes), value: bytes, ...extra };
}

const yes = (b: boolean) => (b ? 'yes' : 'no');

/** "yes"/"no" for viva ≤ factor × ref, with the ratio; "?" when a number is missing. */
function metRatio(viva: Cell, ref: Cell, factor = 1): string {
  if (viva.value === undefined || ref.value === undefined || ref.value === 0) return '?';
  const ratio = viva.value / ref.value;
  return `${yes(viva.value <= factor * ref.value)} (${ratio.toFixed(2)}×)`;
}

// ---------------------------------------------------------------------------------------------------------------------
// the tools

type Tool = 'viva' | 'borg' | 'restic';
type Attempt<T> = { ok: true; value: T } | { ok: false; error: string };

class Tools {
  readonly vivaEnv: NodeJS.ProcessEnv;
  readonly borgEnv: NodeJS.ProcessEnv;
  readonly resticEnv: NodeJS.ProcessEnv;

  constructor(readonly work: string) {
    const base: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', NO_COLOR: '1' };
    for (const k of Object.keys(base)) if (k.startsWith('VIVA_') || k === 'DEBUG' || k === 'NODE_OPTIONS') delete base[k];
    this.vivaEnv = { ...base, VIVA_AUTHOR: 'Bench <bench@example.com>' };
    this.borgEnv = {
      ...base, BORG_BASE_DIR: path.join(work, 'borg-home'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
    this.resticEnv = { ...base, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
  }

  // argument vectors, shared by the timed and the RSS-sampled runs
  vivaInitArgv(repo: string): [string, string[]] { return [process.execPath, [BIN, 'init', repo]]; }
  vivaCommitArgv(repo: string, src: string, branch: string, msg: string): [string, string[]] {
    return [process.execPath, [BIN, 'commit', '-C', repo, src, '-b', branch, '-m', msg, '--json']];
  }
  borgInitArgv(repo: string): [string, string[]] { return ['borg', ['init', '-e', 'none', repo]]; }
  borgCreateArgv(repo: string, archive: string, src: string): [string, string[]] { return ['borg', ['create', `${repo}::${archive}`, src]]; }
  resticInitArgv(repo: string): [string, string[]] { return ['restic', ['-r', repo, 'init']]; }
  resticBackupArgv(repo: string, src: string): [string, string[]] { return ['restic', ['-r', repo, 'backup', '-q', src]]; }

  envOf(tool: Tool): NodeJS.ProcessEnv {
    return tool === 'viva' ? this.vivaEnv : tool === 'borg' ? this.borgEnv : this.resticEnv;
  }

  run(tool: Tool, [cmd, args]: [string, string[]]): Exec {
    return timed(cmd, args, { cwd: this.work, env: this.envOf(tool) });
  }

  runWithRss(tool: Tool, [cmd, args]: [string, string[]]): Promise<SampledExec> {
    return timedWithRss(cmd, args, { cwd: this.work, env: this.envOf(tool) });
  }

  /** Creates an empty repository of `tool` at `repo` (untimed). */
  init(tool: Tool, repo: string): Attempt<void> {
    rmrf(repo);
    const r = this.run(tool, tool === 'viva' ? this.vivaInitArgv(repo) : tool === 'borg' ? this.borgInitArgv(repo) : this.resticInitArgv(repo));
    return r.ok ? { ok: true, value: undefined } : { ok: false, error: `init: ${r.error}` };
  }

  /** The timed "record this tree" command of each tool. */
  commitArgv(tool: Tool, repo: string, src: string, name: string): [string, string[]] {
    if (tool === 'viva') return this.vivaCommitArgv(repo, src, name.replace(/-r\d+$/, ''), name);
    if (tool === 'borg') return this.borgCreateArgv(repo, name, src);
    return this.resticBackupArgv(repo, src);
  }

  commit(tool: Tool, repo: string, src: string, name: string): Exec {
    return this.run(tool, this.commitArgv(tool, repo, src, name));
  }

  /** The directory whose size is the repository's size. */
  storeDir(tool: Tool, repo: string): string {
    return tool === 'viva' ? path.join(repo, '.viva') : repo;
  }

  /**
   * The bytes of a repository: its store directory, without viva's stat cache (`.viva/cache.mdb`), as borg's and
   * restic's caches (kept in the work directory) are not counted either.
   */
  storeBytes(tool: Tool, repo: string): number {
    return tool === 'viva' ? duBytesExcluding([STAT_CACHE_GLOB], this.storeDir(tool, repo)) : duBytes(this.storeDir(tool, repo));
  }
}

const TOOLS: Tool[] = ['viva', 'borg', 'restic'];
/** viva's stat cache and its lock file (see storeBytes). */
const STAT_CACHE_GLOB = `${STAT_CACHE_FILE}*`;

/** Parses viva's `commit --json` output (files, cachedFiles, storedBytes …) for the JSON results. */
function vivaStats(e: Exec | undefined): Record<string, unknown> {
  if (!e?.ok) return {};
  try {
    const j = JSON.parse(e.stdout) as Record<string, unknown>;
    const pick: Record<string, unknown> = {};
    for (const k of ['files', 'dirs', 'bytes', 'storedBytes', 'cachedFiles']) if (k in j) pick[k] = j[k];
    return { stats: pick };
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// the measures

interface Context {
  opt: Options;
  tools: Tools;
  /** Repositories holding base (and later base2), made by the commit measure or by ensureMain. */
  main: Partial<Record<Tool, Attempt<string>>>;
  notes: string[];
}

function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function describe(tool: string, e: Exec): string {
  return `${tool} ${e.ok ? `${fmtSecs(e.secs)} s` : `error: ${e.error}`}`;
}

/** Reads base once so that every tool (and the floor) starts from a warm page cache. */
function warmUp(opt: Options, tree: string): void {
  progress(`warming the page cache with ${tree}`);
  timedShell(`tar -C '${opt.corpus}' -cf - '${tree}' | cat > /dev/null`);
}

function floorArgv(opt: Options, tree: string): string {
  return `tar -C '${opt.corpus}' -cf - '${tree}' | zstd -T0 -3 > /dev/null`;
}

async function measureCommit(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const src = path.join(opt.corpus, 'base');
  warmUp(opt, 'base');
  const execs: Record<Tool | 'floor', Exec[]> = { viva: [], borg: [], restic: [], floor: [] };
  const errors: Partial<Record<Tool, string>> = {};
  for (let i = 0; i < opt.heavyRuns; i++) {
    syncDisks();
    const f = timedShell(floorArgv(opt, 'base'));
    execs.floor.push(f);
    progress(`commit base run ${i + 1}/${opt.heavyRuns}: ${describe('tar|zstd -3', f)}`);
    for (const tool of TOOLS) {
      const repo = path.join(opt.work, 'main', tool);
      const init = tools.init(tool, repo);
      if (!init.ok) {
        errors[tool] = init.error;
        ctx.main[tool] = init;
        continue;
      }
      syncDisks();
      const e = tools.commit(tool, repo, src, 'base');
      execs[tool].push(e);
      ctx.main[tool] = e.ok ? { ok: true, value: repo } : { ok: false, error: e.error ?? 'failed' };
      progress(`commit base run ${i + 1}/${opt.heavyRuns}: ${describe(tool, e)}`);
    }
  }
  const cell = (t: Tool) => (errors[t] ? errorCell(errors[t]!) : timeCell(execs[t], t === 'viva' ? vivaStats(execs.viva.at(-1)!) : {}));
  const viva = cell('viva');
  const borg = cell('borg');
  return [{
    id: 'commit', measure: 'commit base into a new repository (s)', unit: 's', viva, borg, restic: cell('restic'),
    floor: { ...timeCell(execs.floor), tool: 'tar | zstd -T0 -3' },
    target: `≤ ${TARGET_COMMIT_VS_BORG} × borg`, met: metRatio(viva, borg, TARGET_COMMIT_VS_BORG),
  }];
}

/** Makes sure ctx.main has a repository with base for each tool (untimed setup when the commit measure was skipped). */
function ensureMain(ctx: Context, tools: Tool[]): void {
  const src = path.join(ctx.opt.corpus, 'base');
  for (const tool of tools) {
    if (ctx.main[tool]) continue;
    const repo = path.join(ctx.opt.work, 'main', tool);
    progress(`setup: committing base into a fresh ${tool} repository (not timed)`);
    const init = ctx.tools.init(tool, repo);
    if (!init.ok) {
      ctx.main[tool] = init;
      continue;
    }
    const e = ctx.tools.commit(tool, repo, src, 'base');
    ctx.main[tool] = e.ok ? { ok: true, value: repo } : { ok: false, error: `setup commit of base: ${e.error}` };
  }
}

async function measureRecommit(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  ensureMain(ctx, TOOLS);
  const src = path.join(opt.corpus, 'base');
  const execs: Record<Tool, Exec[]> = { viva: [], borg: [], restic: [] };
  for (let i = 1; i <= opt.runs; i++) {
    for (const tool of TOOLS) {
      const repo = ctx.main[tool]!;
      if (!repo.ok) continue;
      syncDisks();
      const e = tools.commit(tool, repo.value, src, `base-r${i}`);
      execs[tool].push(e);
      progress(`re-commit base run ${i}/${opt.runs}: ${describe(tool, e)}`);
    }
  }
  const cell = (t: Tool) => {
    const m = ctx.main[t]!;
    return m.ok ? timeCell(execs[t], t === 'viva' ? vivaStats(execs.viva.at(-1)!) : {}) : errorCell(m.error);
  };
  const viva = cell('viva');
  const restic = cell('restic');
  let met = '?';
  if (viva.value !== undefined && restic.value !== undefined) {
    const speedup = restic.value / viva.value;
    met = `${yes(speedup >= TARGET_RECOMMIT_VS_RESTIC)} (${speedup.toFixed(1)}× faster than restic)`;
  }
  return [{
    id: 'recommit', measure: 're-commit base unchanged (s)', unit: 's', viva, borg: cell('borg'), restic, floor: NONE,
    target: `≥ ${TARGET_RECOMMIT_VS_RESTIC}× faster than restic`, met,
  }];
}

async function measureIncremental(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  ensureMain(ctx, TOOLS);
  warmUp(opt, 'base2');
  const src = path.join(opt.corpus, 'base2');
  const cells = {} as Record<Tool, Cell>;
  for (const tool of TOOLS) {
    const repo = ctx.main[tool]!;
    if (!repo.ok) {
      cells[tool] = errorCell(repo.error);
      continue;
    }
    const before = tools.storeBytes(tool, repo.value);
    syncDisks();
    const e = tools.commit(tool, repo.value, src, 'base2');
    const growth = e.ok ? tools.storeBytes(tool, repo.value) - before : undefined;
    cells[tool] = timeCell([e], { growthBytes: growth, ...(tool === 'viva' ? vivaStats(e) : {}) });
    progress(`commit base2 after base: ${describe(tool, e)}${growth !== undefined ? `, repository +${fmtBytes(growth)}` : ''}`);
  }
  return [{
    id: 'incremental', measure: 'commit base2 after base (s)', unit: 's', ...cells, floor: NONE,
    target: '≤ restic', met: metRatio(cells.viva, cells.restic),
  }];
}

async function measureSize(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const trees = ['min', 'base', 'web', 'base2'];
  const state = {} as Record<Tool, { repo: string; error?: string; secs: number; perTree: Record<string, number> }>;
  for (const tool of TOOLS) {
    const repo = path.join(opt.work, 'size', tool);
    const init = tools.init(tool, repo);
    state[tool] = { repo, secs: 0, perTree: {}, ...(init.ok ? {} : { error: init.error }) };
  }
  for (const tree of trees) {
    warmUp(opt, tree);
    for (const tool of TOOLS) {
      const s = state[tool];
      if (s.error) continue;
      syncDisks();
      const e = tools.commit(tool, s.repo, path.join(opt.corpus, tree), tree);
      if (!e.ok) {
        s.error = `commit ${tree}: ${e.error}`;
      } else {
        s.secs += e.secs;
        s.perTree[tree] = e.secs;
      }
      progress(`size: commit ${tree}: ${describe(tool, e)}`);
    }
  }
  const input = duBytes(...trees.map((t) => path.join(opt.corpus, t)));
  const size = {} as Record<Tool, Cell>;
  const time = {} as Record<Tool, Cell>;
  for (const tool of TOOLS) {
    const s = state[tool];
    if (s.error) {
      size[tool] = errorCell(s.error);
      time[tool] = errorCell(s.error);
      continue;
    }
    const bytes = tools.storeBytes(tool, s.repo);
    size[tool] = bytesCell(bytes, { bytes });
    time[tool] = { text: fmtSecs(s.secs), value: s.secs, perTree: s.perTree };
    progress(`size: ${tool} repository ${bytes} bytes after ${fmtSecs(s.secs)} s of commits`);
  }
  return [
    {
      id: 'size', measure: 'repository size after min+base+web+base2 (MB; floor: input)', unit: 'bytes', ...size,
      floor: { ...bytesCell(input), bytes: input, tool: 'du -sb of the four trees' }, target: '≤ restic',
      met: metRatio(size.viva, size.restic),
    },
    {
      id: 'size-time', measure: 'commit min+base+web+base2 into a fresh repo, total (s)', unit: 's', ...time, floor: NONE,
      target: '—', met: '—',
    },
  ];
}

/**
 * Entry count and total size of the non-directories of a tree: a quick sanity check of the checkout (untimed).
 * Directory sizes are left out: they depend on the order entries were created in, not on the image.
 */
function treeShape(dir: string): { entries: number; bytes: number } | undefined {
  try {
    const out = execFileSync('bash', ['-c', `find '${dir}' -printf '%y %s\\n' | awk '{ n++; if ($1 != "d") b += $2 } END { printf "%d %d", n, b }'`], { encoding: 'utf8' });
    const [entries, bytes] = out.trim().split(' ').map(Number);
    return { entries: entries!, bytes: bytes! };
  } catch {
    return undefined;
  }
}

async function measureCheckout(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  ensureMain(ctx, ['viva']);
  const src = path.join(opt.corpus, 'base');
  warmUp(opt, 'base');
  const main = ctx.main.viva!;
  const dir = path.join(opt.work, 'checkout');
  fs.mkdirSync(dir, { recursive: true });
  const vivaDest = path.join(dir, 'viva');
  const cpDest = path.join(dir, 'cp');
  const execs = { viva: [] as Exec[], cp: [] as Exec[] };
  let shape: Record<string, unknown> = {};
  for (let i = 1; i <= opt.runs; i++) {
    if (main.ok) {
      rmrf(vivaDest);
      syncDisks();
      const e = tools.run('viva', [process.execPath, [BIN, 'checkout', '-C', main.value, 'base', vivaDest]]);
      execs.viva.push(e);
      progress(`checkout base run ${i}/${opt.runs}: ${describe('viva', e)}`);
      if (i === 1 && e.ok) shape = { vivaTree: treeShape(vivaDest) };
      rmrf(vivaDest);
    }
    rmrf(cpDest);
    syncDisks();
    const c = timed('cp', ['-a', src, cpDest]);
    execs.cp.push(c);
    progress(`checkout base run ${i}/${opt.runs}: ${describe('cp -a', c)}`);
    if (i === 1 && c.ok) shape = { ...shape, cpTree: treeShape(cpDest) };
    rmrf(cpDest);
  }
  const v = shape.vivaTree as { entries: number; bytes: number } | undefined;
  const c = shape.cpTree as { entries: number; bytes: number } | undefined;
  if (v && c && (v.entries !== c.entries || v.bytes !== c.bytes)) {
    ctx.notes.push(`checkout: viva's tree differs from cp -a's: ${v.entries} vs ${c.entries} entries, ${v.bytes} vs ${c.bytes} bytes in non-directories`);
  }
  const viva = main.ok ? timeCell(execs.viva, shape) : errorCell(main.error);
  const cp = { ...timeCell(execs.cp), tool: 'cp -a' };
  return [{
    id: 'checkout', measure: 'checkout base to a directory (s)', unit: 's', viva, borg: NONE, restic: NONE, floor: cp,
    target: `≤ ${TARGET_CHECKOUT_VS_CP} × cp -a`, met: metRatio(viva, cp, TARGET_CHECKOUT_VS_CP),
  }];
}

function rssCell(e: SampledExec, withSamples: boolean): Cell {
  if (!e.ok) return errorCell(e.error ?? 'failed');
  if (e.maxRss === undefined) return errorCell('/usr/bin/time reported no max RSS');
  const sampled = `anon ${fmtMB(e.anonPeak)} / file ${fmtMB(e.filePeak)}`;
  return {
    text: withSamples ? `${fmtMB(e.maxRss)} (${sampled})` : fmtMB(e.maxRss), value: e.maxRss, maxRss: e.maxRss,
    anonPeak: e.anonPeak, filePeak: e.filePeak, samples: e.samples, secs: e.secs,
  };
}

function metRss(viva: Cell): string {
  if (viva.value === undefined) return '?';
  const anon = viva.anonPeak as number;
  if (viva.value <= TARGET_RSS) return 'yes';
  return `no (RssAnon: ${yes(anon <= TARGET_RSS)})`;
}

async function measureRss(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const src = path.join(opt.corpus, 'web');
  warmUp(opt, 'web');
  const rss = {} as Record<Tool, Cell>;
  const time = {} as Record<Tool, Cell>;
  for (const tool of TOOLS) {
    const repo = path.join(opt.work, 'rss', tool);
    const init = tools.init(tool, repo);
    if (!init.ok) {
      rss[tool] = time[tool] = errorCell(init.error);
      continue;
    }
    syncDisks();
    const e = await tools.runWithRss(tool, tools.commitArgv(tool, repo, src, 'web'));
    rss[tool] = rssCell(e, true);
    time[tool] = timeCell([e], tool === 'viva' ? vivaStats(e) : {});
    progress(`rss: commit web: ${describe(tool, e)}, max RSS ${rss[tool].text} MB`);
  }
  return [
    {
      id: 'rss', measure: 'peak RSS committing web into a fresh repo (MB: time %M (sampled RssAnon / RssFile peaks))',
      unit: 'bytes', ...rss, floor: NONE, target: `≤ ${TARGET_RSS / MB} MB`, met: metRss(rss.viva),
    },
    {
      id: 'rss-time', measure: 'commit web into a fresh repo (s)', unit: 's', ...time, floor: NONE, target: '—', met: '—',
    },
  ];
}

/** Writes the two big inputs: a 2 GiB sparse file with 8 KiB of data in the middle, and 1 GiB of random bytes. */
function makeBigInputs(dir: string): { sparse: string; random: string } {
  const sparse = path.join(dir, 'sparse');
  const random = path.join(dir, 'random');
  fs.mkdirSync(sparse, { recursive: true });
  fs.mkdirSync(random, { recursive: true });
  let fd = fs.openSync(path.join(sparse, 'disk.img'), 'w');
  fs.ftruncateSync(fd, 2 * GiB);
  fs.writeSync(fd, crypto.randomBytes(8192), 0, 8192, GiB);
  fs.closeSync(fd);
  fd = fs.openSync(path.join(random, 'random.bin'), 'w');
  const buf = Buffer.allocUnsafe(16 << 20);
  for (let done = 0; done < GiB; done += buf.length) fs.writeSync(fd, crypto.randomFillSync(buf));
  fs.closeSync(fd);
  return { sparse, random };
}

async function measureBig(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const dir = path.join(opt.work, 'big');
  progress('big: writing a 2 GiB sparse file (8 KiB of data) and a 1 GiB random file');
  const inputs = makeBigInputs(path.join(dir, 'src'));
  const repos = {} as Record<Tool, Attempt<string>>;
  for (const tool of TOOLS) {
    const repo = path.join(dir, tool);
    const init = tools.init(tool, repo);
    repos[tool] = init.ok ? { ok: true, value: repo } : init;
  }
  const rows: Row[] = [];
  for (const kind of ['sparse', 'random'] as const) {
    const src = inputs[kind];
    const label = kind === 'sparse' ? '2 GiB sparse file (8 KiB data)' : '1 GiB random file';
    timedShell(`cat '${src}'/* > /dev/null`);
    const floorExecs: Exec[] = [];
    for (let i = 0; i < opt.runs; i++) floorExecs.push(timedShell(`zstd -T0 -3 < '${src}'/* > /dev/null`));
    const time = {} as Record<Tool, Cell>;
    const rss = {} as Record<Tool, Cell>;
    const growth = {} as Record<Tool, Cell>;
    for (const tool of TOOLS) {
      const repo = repos[tool];
      if (!repo.ok) {
        time[tool] = rss[tool] = growth[tool] = errorCell(repo.error);
        continue;
      }
      const before = tools.storeBytes(tool, repo.value);
      syncDisks();
      const e = await tools.runWithRss(tool, tools.commitArgv(tool, repo.value, src, kind));
      time[tool] = timeCell([e], tool === 'viva' ? vivaStats(e) : {});
      rss[tool] = rssCell(e, tool === 'viva');
      growth[tool] = e.ok ? (() => { const g = tools.storeBytes(tool, repo.value) - before; return { text: fmtBytes(g), value: g, bytes: g }; })() : errorCell(e.error ?? 'failed');
      progress(`big: ${kind}: ${describe(tool, e)}, max RSS ${rss[tool].text} MB, stored +${growth[tool].text}`);
    }
    const dataBytes = kind === 'sparse' ? 8192 : GiB;
    const growthTarget = kind === 'sparse' ? TARGET_SPARSE_GROWTH : TARGET_RANDOM_GROWTH_FACTOR * GiB;
    rows.push(
      {
        id: `big-${kind}-time`, measure: `${label}: commit (s)`, unit: 's', ...time,
        floor: { ...timeCell(floorExecs), tool: 'zstd -T0 -3' }, target: '—', met: '—',
      },
      {
        id: `big-${kind}-rss`, measure: `${label}: peak RSS (MB)`, unit: 'bytes', ...rss, floor: NONE,
        target: `≤ ${TARGET_RSS / MB} MB (constant)`, met: metRss(rss.viva),
      },
      {
        id: `big-${kind}-growth`, measure: `${label}: repository growth`, unit: 'bytes', ...growth,
        floor: { text: fmtBytes(dataBytes), value: dataBytes, tool: 'data bytes' },
        target: kind === 'sparse' ? `≤ ${TARGET_SPARSE_GROWTH / MB} MB` : `≤ ${TARGET_RANDOM_GROWTH_FACTOR} × data`,
        met: growth.viva.value === undefined ? '?' : yes(growth.viva.value <= growthTarget),
      },
    );
  }
  return rows;
}

/** Writes `bytes` of random data to `file` (16 MiB at a time). */
function writeRandomFile(file: string, bytes: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.allocUnsafe(16 << 20);
  try {
    for (let done = 0; done < bytes; done += buf.length) fs.writeSync(fd, crypto.randomFillSync(buf), 0, Math.min(buf.length, bytes - done));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A 10 GiB random file against a 1 GiB one (issue 19: "a 10 GiB file still in constant memory"): each committed alone
 * into a new repository by each tool, peak RSS and time. Each repository is removed after its commit, so the work
 * directory holds at most the two inputs (11 GiB) and one 10 GiB repository. One run: RSS is the measure.
 */
async function measureHuge(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const dir = path.join(opt.work, 'huge');
  rmrf(dir);
  const inputs = { gib: path.join(dir, 'src', 'gib'), huge: path.join(dir, 'src', 'huge') };
  progress('huge: writing a 1 GiB and a 10 GiB random file');
  writeRandomFile(path.join(inputs.gib, 'random.bin'), GiB);
  writeRandomFile(path.join(inputs.huge, 'random.bin'), 10 * GiB);
  const rss = { gib: {} as Record<Tool, Cell>, huge: {} as Record<Tool, Cell> };
  const time = {} as Record<Tool, Cell>;
  for (const kind of ['gib', 'huge'] as const) {
    for (const tool of TOOLS) {
      const repo = path.join(dir, tool);
      rmrf(repo);
      const init = tools.init(tool, repo);
      if (!init.ok) {
        rss[kind][tool] = time[tool] = errorCell(init.error);
        continue;
      }
      syncDisks();
      const e = await tools.runWithRss(tool, tools.commitArgv(tool, repo, inputs[kind], 'random'));
      rss[kind][tool] = rssCell(e, tool === 'viva');
      if (kind === 'huge') time[tool] = timeCell([e]);
      progress(`huge: ${kind === 'gib' ? '1 GiB' : '10 GiB'}: ${describe(tool, e)}, max RSS ${rss[kind][tool].text} MB`);
      rmrf(repo);
    }
  }
  rmrf(dir);
  const gib = rss.gib.viva.value;
  const huge = rss.huge.viva.value;
  return [
    {
      id: 'huge-gib-rss', measure: '1 GiB random file into a new repository: peak RSS (MB)', unit: 'bytes', ...rss.gib, floor: NONE,
      target: '—', met: '—',
    },
    {
      id: 'huge-rss', measure: '10 GiB random file into a new repository: peak RSS (MB)', unit: 'bytes', ...rss.huge, floor: NONE,
      target: `≤ ${TARGET_HUGE_VS_GIB} × the 1 GiB file's (constant)`,
      met: gib === undefined || huge === undefined ? '?' : `${yes(huge <= TARGET_HUGE_VS_GIB * gib)} (${(huge / gib).toFixed(2)}×)`,
    },
    { id: 'huge-time', measure: '10 GiB random file into a new repository: commit (s)', unit: 's', ...time, floor: NONE, target: '—', met: '—' },
  ];
}

/**
 * XFS against ext4 (issue 15): the base tree on a bare XFS image (mkfs.xfs defaults, filled through a loop mount with
 * `cp -a`, so root is needed) and on a bare ext4 image of the same size (`mke2fs -d`), each committed into a new
 * repository; the target is XFS ≤ 1.2 × ext4.
 */
async function measureXfs(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const base = path.join(opt.corpus, 'base');
  const dir = path.join(opt.work, 'xfs');
  fs.mkdirSync(dir, { recursive: true });
  const size = Math.max(2 * GiB, Math.ceil((3 * duBytes(base)) / GiB) * GiB);
  const ext4 = path.join(dir, 'base.ext4');
  const xfs = path.join(dir, 'base.xfs');
  const mnt = path.join(dir, 'mnt');
  for (const f of [ext4, xfs]) { rmrf(f); fs.closeSync(fs.openSync(f, 'w')); fs.truncateSync(f, size); }
  must('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', base, '-E', 'root_owner=0:0', ext4]);
  must('mkfs.xfs', ['-q', '-f', xfs]);
  fs.mkdirSync(mnt, { recursive: true });
  must('mount', ['-o', 'loop', xfs, mnt]);
  try {
    must('cp', ['-a', `${base}/.`, mnt]);
  } finally {
    must('umount', [mnt]);
  }
  const execs: Record<'ext4' | 'xfs', Exec[]> = { ext4: [], xfs: [] };
  for (let i = 0; i < opt.heavyRuns; i++) {
    for (const [kind, image] of [['ext4', ext4], ['xfs', xfs]] as const) {
      const repo = path.join(dir, `repo-${kind}`);
      const init = tools.init('viva', repo);
      if (!init.ok) return [{ id: 'xfs-commit', measure: `commit base on ${kind}`, unit: 's', viva: errorCell(init.error ?? 'init failed'), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' }];
      syncDisks();
      execs[kind].push(tools.run('viva', tools.commitArgv('viva', repo, image, `base-${kind}`)));
      progress(`commit base.${kind} run ${i + 1}/${opt.heavyRuns}: ${describe('viva', execs[kind].at(-1)!)}`);
      rmrf(repo);
    }
  }
  rmrf(ext4); rmrf(xfs);
  const viva = timeCell(execs.xfs, vivaStats(execs.xfs.at(-1)));
  const floor = { ...timeCell(execs.ext4), tool: 'viva, the same tree on ext4' };
  return [{
    id: 'xfs-commit', measure: `commit base on a bare ${fmtBytes(size)} XFS image into a new repository (s); floor: the same on ext4`, unit: 's',
    viva, borg: NONE, restic: NONE, floor, target: `≤ ${TARGET_XFS_VS_EXT4} × ext4`, met: metRatio(viva, floor, TARGET_XFS_VS_EXT4),
  }];
}

/**
 * Disk images (issue 4): commit images/base.qcow2 into a new repository (borg and restic back up the same file);
 * the repository growth when it is committed after the base directory (its files are the same blobs); and a
 * bit-exact checkout to raw against `qemu-img convert -O raw` of the same image.
 */
async function measureDisk(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const image = path.join(opt.corpus, 'images/base.qcow2');
  const virtual = Number(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', image], { encoding: 'utf8' }))['virtual-size']);
  const execs: Record<Tool, Exec[]> = { viva: [], borg: [], restic: [] };
  const rss = {} as Record<Tool, Cell>;
  const errors: Partial<Record<Tool, string>> = {};
  for (let i = 0; i < opt.heavyRuns; i++) {
    for (const tool of TOOLS) {
      const repo = path.join(opt.work, 'disk', tool);
      const init = tools.init(tool, repo);
      if (!init.ok) { errors[tool] = init.error; continue; }
      syncDisks();
      const e = await tools.runWithRss(tool, tools.commitArgv(tool, repo, image, 'disk'));
      execs[tool].push(e);
      rss[tool] = rssCell(e, tool === 'viva');
      progress(`commit base.qcow2 run ${i + 1}/${opt.heavyRuns}: ${describe(tool, e)}, max RSS ${rss[tool].text} MB`);
    }
  }
  // The same image behind a 16 GiB virtual disk (a qcow2 overlay): memory must not grow with the virtual size.
  const bigImage = path.join(opt.work, 'disk-16g.qcow2');
  rmrf(bigImage);
  must('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', bigImage, '16G']);
  const bigRepo = path.join(opt.work, 'disk', 'viva-16g');
  tools.init('viva', bigRepo);
  syncDisks();
  const big = await tools.runWithRss('viva', tools.commitArgv('viva', bigRepo, bigImage, 'disk'));
  progress(`commit of the 16 GiB overlay: ${describe('viva', big)}`);
  rmrf(bigImage);
  rmrf(bigRepo);
  const cell = (t: Tool) => (errors[t] ? errorCell(errors[t]!) : timeCell(execs[t], t === 'viva' ? vivaStats(execs.viva.at(-1)) : {}));
  const viva = cell('viva');
  const borg = cell('borg');
  const rate = viva.value ? virtual / viva.value / MB : 0;
  const rows: Row[] = [{
    id: 'disk-commit', measure: `commit base.qcow2 (${fmtBytes(virtual)} virtual) into a new repository (s)`, unit: 's', viva, borg,
    restic: cell('restic'), floor: { text: `${rate.toFixed(0)} MB/s virtual`, value: rate },
    target: '≤ borg, ≥ 200 MB/s of virtual size', met: `${metRatio(viva, borg)}; rate: ${yes(rate >= 200)}`,
  }, {
    id: 'disk-rss', measure: 'peak RSS committing base.qcow2 (MB); floor: the same image as a 16 GiB virtual disk', unit: 'bytes',
    viva: rss.viva ?? NONE, borg: rss.borg ?? NONE, restic: rss.restic ?? NONE,
    floor: big.ok ? { ...rssCell(big, true), tool: 'viva, 16 GiB overlay', secs: big.secs } : errorCell(big.error ?? 'failed'),
    target: 'independent of image size; ≤ 500 MB',
    met: rss.viva?.value !== undefined && big.ok && big.maxRss !== undefined
      ? `${yes(rss.viva.value <= TARGET_RSS && big.maxRss <= TARGET_RSS && Math.abs(big.maxRss - rss.viva.value) <= 0.25 * rss.viva.value)} (16 GiB: ${fmtMB(big.maxRss)} in ${fmtSecs(big.secs)} s)`
      : '?',
  }];

  // Growth: base.qcow2 after the base directory, in the main repository.
  ensureMain(ctx, ['viva']);
  const main = ctx.main.viva!;
  if (main.ok) {
    const before = tools.storeBytes('viva', main.value);
    const e = tools.commit('viva', main.value, image, 'base-qcow2');
    const growth = tools.storeBytes('viva', main.value) - before;
    const used = Number((vivaStats(e).stats as { bytes?: number } | undefined)?.bytes ?? 0);
    rows.push({
      id: 'disk-growth', measure: 'repository growth committing base.qcow2 after the base directory (MB)', unit: 'B',
      viva: e.ok ? bytesCell(growth, { imageFileBytes: used, percent: used ? (100 * growth) / used : undefined }) : errorCell(e.error ?? 'failed'),
      borg: NONE, restic: NONE, floor: { text: `${fmtBytes(used)} of files`, value: used },
      target: '≤ 5 % of the image\'s used size', met: e.ok && used ? yes(growth <= 0.05 * used) + ` (${((100 * growth) / used).toFixed(1)} %)` : '?',
    });
    // Bit-exact checkout to raw against qemu-img convert.
    const dir = path.join(opt.work, 'disk-out');
    fs.mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'viva.raw');
    const q = path.join(dir, 'qemu.raw');
    const ve: Exec[] = [];
    const qe: Exec[] = [];
    for (let i = 1; i <= opt.runs; i++) {
      rmrf(out); rmrf(q); syncDisks();
      ve.push(tools.run('viva', [process.execPath, [BIN, 'checkout', '-C', main.value, 'base-qcow2', out]]));
      rmrf(out); syncDisks();
      qe.push(timed('qemu-img', ['convert', '-O', 'raw', image, q]));
      progress(`checkout base.raw run ${i}/${opt.runs}: ${describe('viva', ve.at(-1)!)}, ${describe('qemu-img convert', qe.at(-1)!)}`);
    }
    const vc = timeCell(ve);
    const qc = { ...timeCell(qe), tool: 'qemu-img convert -O raw' };
    rows.push({
      id: 'disk-checkout', measure: 'checkout base.qcow2 commit bit-exact to raw (s)', unit: 's', viva: vc, borg: NONE, restic: NONE, floor: qc,
      target: `≤ ${TARGET_RAW_CHECKOUT_VS_QEMU} × qemu-img convert`, met: metRatio(vc, qc, TARGET_RAW_CHECKOUT_VS_QEMU),
    });
    rmrf(out); rmrf(q);
  }

  // The same disk as a VMDK streamOptimized (the OVA format, issue 15) against it as qcow2, each into a new repository.
  const vmdk = path.join(opt.work, 'disk-stream.vmdk');
  rmrf(vmdk);
  must('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', image, vmdk]);
  const asVmdk: Exec[] = [];
  const asQcow2: Exec[] = [];
  for (let i = 1; i <= opt.runs; i++) {
    for (const [file, list] of [[vmdk, asVmdk], [image, asQcow2]] as const) {
      const repo = path.join(opt.work, 'disk', 'viva-container');
      tools.init('viva', repo);
      syncDisks();
      list.push(tools.commit('viva', repo, file, 'disk'));
      rmrf(repo);
    }
    progress(`commit base as vmdk/qcow2 run ${i}/${opt.runs}: ${describe('viva', asVmdk.at(-1)!)}, ${describe('viva', asQcow2.at(-1)!)}`);
  }
  rmrf(vmdk);
  const vv = timeCell(asVmdk);
  const vq = { ...timeCell(asQcow2), tool: 'viva commit base.qcow2' };
  rows.push({
    id: 'disk-vmdk', measure: 'commit base as a VMDK streamOptimized into a new repository (s); floor: the same disk as qcow2', unit: 's',
    viva: vv, borg: NONE, restic: NONE, floor: vq, target: '≤ 1.2 × the same disk as qcow2', met: metRatio(vv, vq, 1.2),
  });
  return rows;
}

/**
 * Inspect (issue 5), on a viva repository holding min, base, web and base2 (the size measure's, else made untimed):
 * 1000 checksum lookups in one process (900 corpus files, 100 absent) with recall and false hits checked, diff and
 * package diff of base and base2 (in process and as CLI runs), and the content index's share of the repository.
 */
async function measureInspect(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  let repo = path.join(opt.work, 'size', 'viva');
  if (!fs.existsSync(path.join(repo, '.viva')) || !tools.run('viva', [process.execPath, [BIN, 'find', '-C', repo, '--sha256', '0'.repeat(64)]]).ok) {
    repo = path.join(opt.work, 'inspect', 'viva');
    tools.init('viva', repo);
    for (const tree of ['min', 'base', 'web', 'base2']) {
      progress(`inspect setup: committing ${tree} (not timed)`);
      tools.commit('viva', repo, path.join(opt.corpus, tree), tree);
    }
  }
  const probe = timed(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/inspect-probe.ts'), repo, opt.corpus], { cwd: ROOT });
  if (!probe.ok) return [{ id: 'inspect', measure: 'inspect probe', unit: 'ms', viva: errorCell(probe.error ?? 'failed'), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' }];
  const r = JSON.parse(probe.stdout.trim().split('\n').pop()!) as Record<string, number>;
  progress(`inspect: ${JSON.stringify(r)}`);
  const cli = (args: string[]) => {
    const runs: Exec[] = [];
    for (let i = 0; i < opt.runs; i++) runs.push(tools.run('viva', [process.execPath, [BIN, ...args, '-C', repo]]));
    return timeCell(runs);
  };
  const diffCli = cli(['diff', 'base', 'base2']);
  const pkgCli = cli(['diff', '--packages', 'base', 'base2']);
  const repoBytes = tools.storeBytes('viva', repo);
  const ms = (v: number, extra: Record<string, unknown> = {}): Cell => ({ text: `${v.toFixed(1)} ms`, value: v, ...extra });
  return [
    {
      id: 'find-sha', measure: `${r.lookups} sha256 lookups across min, base, web, base2, one process (ms)`, unit: 'ms',
      viva: ms(r.lookupMs!, { hits: r.hits, missed: r.missed, falseHits: r.falseHits, absentHits: r.absentHits }), borg: NONE, restic: NONE,
      floor: { text: `${r.hits} hits, ${r.missed} missed, ${r.falseHits! + r.absentHits!} false` },
      target: '< 100 ms, 100 % recall, no false hits', met: yes(r.lookupMs! < 100 && r.missed === 0 && r.falseHits === 0 && r.absentHits === 0),
    },
    {
      id: 'diff', measure: 'diff base base2: in process (ms); floor: CLI run (s, incl. node start)', unit: 'ms', viva: ms(r.diffMs!, { entries: r.diffEntries }),
      borg: NONE, restic: NONE, floor: diffCli, target: '< 200 ms', met: yes(r.diffMs! < 200),
    },
    {
      id: 'diff-packages', measure: 'diff --packages base base2: in process (ms); floor: CLI run (s)', unit: 'ms', viva: ms(r.packagesMs!, { changes: r.packageChanges }),
      borg: NONE, restic: NONE, floor: pkgCli, target: '< 300 ms', met: yes(r.packagesMs! < 300),
    },
    {
      id: 'index-size', measure: 'content index size (MB) against the repository', unit: 'B', viva: bytesCell(r.indexBytes!, { entries: r.indexEntries }),
      borg: NONE, restic: NONE, floor: { text: `repository ${fmtMB(repoBytes)} MB`, value: repoBytes },
      target: '≤ 5 % of the repository', met: `${yes(r.indexBytes! <= 0.05 * repoBytes)} (${((100 * r.indexBytes!) / repoBytes).toFixed(1)} %)`,
    },
  ];
}

/** Starts `viva serve` on a free port and resolves with its URL and a stop function. */
/**
 * NBD (issue 16): sequential read of base.qcow2's disk commit through `viva nbd` on a Unix socket (`qemu-img convert
 * -f raw nbd+unix://… out.raw`) against `qemu-img convert base.qcow2 out.raw`.
 */
async function measureNbd(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const { spawn } = await import('node:child_process');
  const image = path.join(opt.corpus, 'images/base.qcow2');
  const dir = path.join(opt.work, 'nbd');
  const repo = path.join(dir, 'repo');
  if (!fs.existsSync(path.join(repo, '.viva'))) {
    rmrf(dir);
    fs.mkdirSync(dir, { recursive: true });
    progress('nbd: committing images/base.qcow2 (not timed)');
    tools.init('viva', repo);
    const c = tools.run('viva', [process.execPath, [BIN, 'commit', '-C', repo, image, '-b', 'vm/base', '-m', 'base disk']]);
    if (!c.ok) return [{ id: 'nbd-read', measure: 'nbd', unit: 's', viva: errorCell(c.error ?? 'commit failed'), borg: NONE, restic: NONE, floor: NONE, target: '—', met: '?' }];
  }
  const sock = path.join(dir, 'nbd.sock');
  const child = spawn(process.execPath, [BIN, 'nbd', '-C', repo, 'vm/base', '--socket', sock], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const uri = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split('\n')[0]!));
      child.once('exit', () => reject(new Error('viva nbd exited')));
    });
    const out = path.join(dir, 'nbd.raw');
    const q = path.join(dir, 'qemu.raw');
    const ve: Exec[] = [];
    const qe: Exec[] = [];
    for (let i = 1; i <= opt.runs; i++) {
      rmrf(out); rmrf(q); syncDisks();
      ve.push(timed('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out]));
      rmrf(out); syncDisks();
      qe.push(timed('qemu-img', ['convert', '-O', 'raw', image, q]));
      progress(`nbd read run ${i}/${opt.runs}: ${describe('qemu-img convert from viva nbd', ve.at(-1)!)}, ${describe('qemu-img convert base.qcow2', qe.at(-1)!)}`);
    }
    rmrf(out); rmrf(q);
    const vc = { ...timeCell(ve), tool: 'qemu-img convert -f raw nbd+unix://…' };
    const qc = { ...timeCell(qe), tool: 'qemu-img convert base.qcow2' };
    const rows: Row[] = [{
      id: 'nbd-read', measure: 'sequential read of base.qcow2\'s disk commit through viva nbd, to raw (s)', unit: 's', viva: vc, borg: NONE, restic: NONE, floor: qc,
      target: '≥ 0.5 × qemu-img convert of the image (time ≤ 2 ×)', met: metRatio(vc, qc, 2),
    }];
    rows.push(...measureNbdCommit(ctx, dir));
    rows.push(...(await measureNbdBoot(ctx, dir)));
    return rows;
  } finally {
    child.kill('SIGTERM');
  }
}

/**
 * A writable NBD session over base.ext4 (16,677 files) in which 10 files were changed, committed with `viva commit
 * nbd:SESSION` (whole process): the target is ≤ 1 s with new objects about those 10 files. The edits are made on a
 * copy with debugfs and written through NBD as the changed block runs only (not timed), as a guest's writes would be.
 */
function measureNbdCommit(ctx: Context, dir: string): Row[] {
  const { opt, tools } = ctx;
  const image = path.join(opt.corpus, 'images/base.ext4');
  const id = 'nbd-commit';
  const measure = 'commit of a writable NBD session over base.ext4 that changed 10 files (s)';
  const fail = (error: string): Row[] => [{ id, measure, unit: 's', viva: errorCell(error), borg: NONE, restic: NONE, floor: NONE, target: '≤ 1 s', met: '?' }];
  if (!fs.existsSync(image)) return fail('images/base.ext4 missing from the corpus');
  const work = path.join(dir, 'commit');
  rmrf(work);
  fs.mkdirSync(work, { recursive: true });
  const repo = path.join(work, 'repo');
  progress('nbd commit: committing images/base.ext4 and writing 10 changed files through a session (not timed)');
  tools.init('viva', repo);
  const c = tools.run('viva', [process.execPath, [BIN, 'commit', '-C', repo, image, '-b', 'vm/ext4', '-m', 'base.ext4']]);
  if (!c.ok) return fail(c.error ?? 'commit failed');
  // Ten regular files of a few blocks, changed in place in their first block on a copy.
  const edited = path.join(work, 'edited.ext4');
  fs.copyFileSync(image, edited);
  const listing = timed('debugfs', ['-R', 'ls -p /usr/share/doc/base-files', edited]).stdout + timed('debugfs', ['-R', 'ls -p /etc', edited]).stdout;
  const files = listing.split('\n').map((l) => l.split('/')).filter((f) => f[2]?.startsWith('100') && Number(f[6]) >= 4096).map((f) => f[5]!);
  const picked: string[] = [];
  for (const name of files) {
    for (const d of ['/usr/share/doc/base-files', '/etc']) {
      const blk = Number(timed('debugfs', ['-R', `bmap ${d}/${name} 0`, edited]).stdout.trim());
      if (blk > 0 && picked.length < 10 && !picked.includes(`${d}/${name}`)) {
        const fd = fs.openSync(edited, 'r+');
        fs.writeSync(fd, Buffer.from(`changed through a writable nbd session: ${d}/${name}\n`), 0, undefined, blk * 4096);
        fs.closeSync(fd);
        picked.push(`${d}/${name}`);
      }
    }
  }
  if (picked.length < 10) return fail(`found only ${picked.length} files to change`);
  const a = fs.readFileSync(image);
  const b = fs.readFileSync(edited);
  const writes: string[] = [];
  for (let blk = 0; blk * 4096 < a.length; blk++) {
    const x = a.subarray(blk * 4096, (blk + 1) * 4096);
    const y = b.subarray(blk * 4096, (blk + 1) * 4096);
    if (!x.equals(y)) {
      const f = path.join(work, `block${blk}`);
      fs.writeFileSync(f, y);
      writes.push('-c', `write -s ${f} ${blk * 4096} 4096`);
    }
  }
  const sock = path.join(work, 'nbd.sock');
  const script = `node ${JSON.stringify(BIN)} nbd -C ${JSON.stringify(repo)} vm/ext4 --writable --name bench --socket ${JSON.stringify(sock)} >/dev/null 2>&1 & pid=$!; `
    + `for i in $(seq 100); do [ -S ${JSON.stringify(sock)} ] && break; sleep 0.1; done; `
    + `qemu-io -f raw ${writes.map((w) => JSON.stringify(w)).join(' ')} ${JSON.stringify(`nbd+unix:///bench?socket=${sock}`)} >/dev/null; r=$?; kill -INT $pid; wait $pid; exit $r`;
  const w = timedShell(script);
  if (!w.ok) return fail(w.error ?? 'writing through the session failed');
  const execs: Exec[] = [];
  let stored = NaN;
  for (let i = 1; i <= opt.runs; i++) {
    syncDisks();
    const e = timed(process.execPath, [BIN, 'commit', '-C', repo, 'nbd:bench', '-b', `edited-${i}`, '-m', 'after the session', '--json']);
    execs.push(e);
    if (e.ok && i === 1) stored = Number((JSON.parse(e.stdout) as { storedBytes: number }).storedBytes);
    progress(`nbd commit run ${i}/${opt.runs}: ${describe('viva commit nbd:bench', e)}${i === 1 ? `, ${fmtMB(stored)} MB new` : ''}`);
  }
  const sizes = picked.map((f) => Number(/Size: (\d+)/.exec(timed('debugfs', ['-R', `stat ${f}`, edited]).stdout)?.[1] ?? 0));
  const filesBytes = sizes.reduce((n, x) => n + x, 0);
  const vc = { ...timeCell(execs), tool: 'viva commit nbd:SESSION' };
  return [{
    id, measure, unit: 's', viva: vc, borg: NONE, restic: NONE,
    floor: { ...bytesCell(stored), tool: `new bytes stored; the 10 files hold ${fmtMB(filesBytes)} MB` },
    target: '≤ 1 s; new objects ≈ the 10 files', met: `${yes((vc.value ?? Infinity) <= 1)} (${fmtSecs(vc.value ?? NaN)})`,
  }];
}

/**
 * The boot test's disk (kernel + busybox initramfs on ext4, syslinux on FAT; built here, not timed) booted in qemu
 * TCG until it powers off: through `viva run` against qemu on the raw file (both with snapshot=on).
 */
async function measureNbdBoot(ctx: Context, dir: string): Promise<Row[]> {
  const { opt, tools } = ctx;
  const { KERNEL, MISSING, makeBootDisk } = await import('../helpers/boot-disk.js');
  if (MISSING.length || !KERNEL) {
    progress(`nbd boot: skipped, missing ${[...MISSING, ...(KERNEL ? [] : ['a kernel'])].join(', ')}`);
    return [];
  }
  const bootDir = path.join(dir, 'boot');
  rmrf(bootDir);
  fs.mkdirSync(bootDir, { recursive: true });
  progress('nbd boot: building and committing the boot test disk (not timed)');
  // 320 MiB with a 200 MiB file the boot never reads, so that "a fraction of the image" means something.
  const { disk } = makeBootDisk(bootDir, KERNEL, 'bench', {
    sizeMiB: 320,
    fill: (root) => fs.writeFileSync(path.join(root, 'unused.bin'), crypto.randomBytes(200 << 20)),
  });
  const repo = path.join(bootDir, 'repo');
  tools.init('viva', repo);
  const c = tools.run('viva', [process.execPath, [BIN, 'commit', '-C', repo, disk, '-b', 'vm/boot', '-m', 'boot']]);
  if (!c.ok) return [{ id: 'nbd-boot', measure: 'nbd boot', unit: 's', viva: errorCell(c.error ?? 'commit failed'), borg: NONE, restic: NONE, floor: NONE, target: '—', met: '?' }];
  const qemuArgs = ['-no-reboot', '-nodefaults'];
  const ve: Exec[] = [];
  const re: Exec[] = [];
  for (let i = 1; i <= opt.runs; i++) {
    ve.push(timed(process.execPath, [BIN, 'run', '-C', repo, 'vm/boot', '--accel', 'tcg', '--memory', '256M', '--', ...qemuArgs]));
    re.push(timed('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256M', '-display', 'none', '-serial', 'mon:stdio', '-drive', `file=${disk},format=raw,if=virtio,snapshot=on`, ...qemuArgs]));
    for (const e of [ve.at(-1)!, re.at(-1)!]) if (e.ok && !/VIVA-MARKER: bench/.test(e.stdout)) Object.assign(e, { ok: false, error: 'no marker on the console' });
    progress(`nbd boot run ${i}/${opt.runs}: ${describe('viva run', ve.at(-1)!)}, ${describe('qemu on the raw file', re.at(-1)!)}`);
  }
  const vc = { ...timeCell(ve), tool: 'viva run --accel tcg' };
  const rc = { ...timeCell(re), tool: 'qemu-system-x86_64 -accel tcg disk.raw' };
  const rows: Row[] = [{
    id: 'nbd-boot', measure: 'boot of the test disk (kernel + busybox initramfs, TCG) until poweroff (s)', unit: 's', viva: vc, borg: NONE, restic: NONE, floor: rc,
    target: '≤ 1.3 × the raw file', met: metRatio(vc, rc, 1.3),
  }];
  // The same boot from a partial clone over HTTP on 127.0.0.1: bytes fetched against bytes the guest read.
  const server = await startServe(repo, []);
  try {
    const clone = path.join(bootDir, 'clone');
    rmrf(clone);
    must(process.execPath, [BIN, 'clone', '--filter', 'manifests', server.url, clone]);
    const cold = timed(process.execPath, [BIN, 'run', '-C', clone, 'vm/boot', '--accel', 'tcg', '--memory', '256M', '--', ...qemuArgs]);
    const m = /the guest read (\d+) bytes of [^,\s]+(?:, (\d+) bytes fetched)?/.exec(cold.stderr);
    if (!cold.ok || !m || !/VIVA-MARKER: bench/.test(cold.stdout)) {
      rows.push({ id: 'nbd-partial-boot', measure: 'boot from a partial clone over HTTP: bytes fetched', unit: 'B', viva: errorCell(cold.error ?? 'no marker or summary'), borg: NONE, restic: NONE, floor: NONE, target: '—', met: '?' });
    } else {
      const read = Number(m[1]);
      const fetched = Number(m[2] ?? 0);
      const size = fs.statSync(disk).size;
      progress(`nbd partial boot: guest read ${read} bytes, fetched ${fetched} (${(fetched / read).toFixed(2)}×, ${(100 * fetched / size).toFixed(1)} % of the image)`);
      rows.push({
        id: 'nbd-partial-boot', measure: `boot from a partial clone over HTTP on 127.0.0.1: bytes fetched (floor: bytes the guest read; image ${fmtMB(size)} MB)`, unit: 'B',
        viva: { ...bytesCell(fetched), tool: `${cold.secs.toFixed(2)} s` }, borg: NONE, restic: NONE, floor: bytesCell(read),
        target: '≤ 1.5 × read, ≤ 10 % of the image', met: `${yes(fetched <= 1.5 * read && fetched <= 0.1 * size)} (${(fetched / read).toFixed(2)}×, ${(100 * fetched / size).toFixed(1)} %)`,
      });
    }
  } finally {
    server.stop();
  }
  return rows;
}

async function startServe(repo: string, args: string[]): Promise<{ url: string; stop: () => void }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`viva serve exited: ${err}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

/**
 * Sync (issue 6) over HTTP on 127.0.0.1: push base into an empty served repository (against rsync -a of the base
 * tree), push base2 after it (bytes stored against what base2 adds), a manifests-only clone of min, base, web and
 * base2 (against the full repository), and a fetch with nothing new (in process).
 */
async function measureSync(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const work = path.join(opt.work, 'sync');
  rmrf(work);
  fs.mkdirSync(work, { recursive: true });
  const token = path.join(work, 'token');
  fs.writeFileSync(token, 'bench-token\n');
  const env = { ...tools.vivaEnv, VIVA_TOKEN: 'bench-token' };
  const viva = (args: string[]) => timed(process.execPath, [BIN, ...args], { env });
  // The pushing side: base and base2 committed (not timed).
  const local = path.join(work, 'local');
  viva(['init', local]);
  progress('sync setup: committing base and base2 (not timed)');
  viva(['commit', '-C', local, path.join(opt.corpus, 'base'), '-b', 'base', '-m', 'base']);
  const c2 = viva(['commit', '-C', local, path.join(opt.corpus, 'base2'), '-b', 'base2', '-m', 'base2', '--json']);
  const base2Adds = Number((JSON.parse(c2.stdout) as { storedBytes: number }).storedBytes);
  // Push base into an empty served repository, N times (a new one each run), alternating with rsync -a of the tree.
  const pushes: Exec[] = [];
  const rsyncs: Exec[] = [];
  let remote = '';
  let server: { url: string; stop: () => void } | undefined;
  const rows: Row[] = [];
  try {
    for (let i = 0; i < opt.runs; i++) {
      server?.stop();
      remote = path.join(work, `remote-${i}`);
      viva(['init', remote]);
      server = await startServe(remote, ['--allow-push', '--token-file', token]);
      viva(['remote', 'remove', '-C', local, 'lib']);
      viva(['remote', 'add', '-C', local, 'lib', server.url]);
      syncDisks();
      const p1 = viva(['push', '-C', local, 'lib', 'base', '--json']);
      pushes.push(p1);
      progress(`push base run ${i + 1}/${opt.runs}: ${describe('viva', p1)}`);
      const dst = path.join(work, 'rsync');
      rmrf(dst);
      syncDisks();
      const rs = timed('rsync', ['-a', `${path.join(opt.corpus, 'base')}/`, `${dst}/`]);
      rsyncs.push(rs);
      progress(`rsync -a base run ${i + 1}/${opt.runs}: ${describe('rsync', rs)}`);
      rmrf(dst);
      if (i < opt.runs - 1) rmrf(remote);
    }
    const pushCell = timeCell(pushes);
    const rsCell = { ...timeCell(rsyncs), tool: 'rsync -a (local)' };
    rows.push({ id: 'push-base', measure: 'push base to an empty remote over HTTP on 127.0.0.1 (s)', unit: 's', viva: pushCell, borg: NONE, restic: NONE, floor: rsCell, target: `≤ ${TARGET_PUSH_VS_RSYNC} × rsync -a of the base tree`, met: metRatio(pushCell, rsCell, TARGET_PUSH_VS_RSYNC) });
    const p2 = viva(['push', '-C', local, 'lib', 'base2', '--json']);
    const sent = p2.ok ? Number((JSON.parse(p2.stdout) as { bytes: number }).bytes) : NaN;
    progress(`push base2: ${describe('viva', p2)}, ${sent} bytes stored remotely; base2 added ${base2Adds} locally`);
    rows.push({
      id: 'push-base2', measure: 'push base2 after base: bytes stored remotely (time in floor)', unit: 'B', viva: bytesCell(sent), borg: NONE, restic: NONE,
      floor: { ...timeCell([p2]), tool: `base2 adds ${fmtMB(base2Adds)} MB locally` }, target: '≤ 1.2 × what base2 adds; ≤ 2 s',
      met: `${yes(sent <= 1.2 * base2Adds)} (${(sent / base2Adds).toFixed(2)}×); time: ${yes(p2.secs <= 2)}`,
    });
  } finally {
    server?.stop();
  }
  // A full and a manifests-only clone of the four images.
  const lib4 = path.join(work, 'lib4');
  viva(['init', lib4]);
  for (const tree of ['min', 'base', 'web', 'base2']) { progress(`sync setup: committing ${tree} (not timed)`); viva(['commit', '-C', lib4, path.join(opt.corpus, tree), '-b', tree, '-m', tree]); }
  const ro = await startServe(lib4, []);
  try {
    const partial = path.join(work, 'partial');
    const pc = viva(['clone', ro.url, partial, '--filter', 'manifests']);
    progress(`clone --filter manifests: ${describe('viva', pc)}`);
    const full = tools.storeBytes('viva', lib4);
    const part = tools.storeBytes('viva', partial);
    rows.push({
      id: 'clone-manifests', measure: 'clone --filter manifests of min+base+web+base2 (MB)', unit: 'B', viva: bytesCell(part, { secs: pc.secs }),
      borg: NONE, restic: NONE, floor: { text: `full ${fmtMB(full)} MB`, value: full }, target: '≤ 5 % of the full repository',
      met: `${yes(part <= 0.05 * full)} (${((100 * part) / full).toFixed(1)} %)`,
    });
    const probe = timed(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/sync-probe.ts'), partial], { cwd: ROOT, env });
    const r = probe.ok ? (JSON.parse(probe.stdout.trim().split('\n').pop()!) as { fetchMs: number; objects: number }) : undefined;
    const cli = viva(['fetch', '-C', partial]);
    rows.push({
      id: 'fetch-noop', measure: 'fetch with nothing new over HTTP: in process (ms); floor: CLI run (s)', unit: 'ms',
      viva: r ? { text: `${r.fetchMs.toFixed(1)} ms`, value: r.fetchMs } : errorCell(probe.error ?? 'failed'), borg: NONE, restic: NONE,
      floor: timeCell([cli]), target: '< 100 ms', met: r ? yes(r.fetchMs < 100 && r.objects === 0) : '?',
    });
  } finally {
    ro.stop();
  }
  return rows;
}

/** A repository holding min, base, web and base2: the size measure's or sync's when they ran, else made now (untimed). */
function fourImageRepo(ctx: Context, name: string): string {
  const { opt, tools } = ctx;
  for (const candidate of [path.join(opt.work, 'size', 'viva'), path.join(opt.work, 'sync', 'lib4')]) {
    if (fs.existsSync(path.join(candidate, '.viva')) && tools.run('viva', [process.execPath, [BIN, 'rev-parse', '-C', candidate, 'base2']]).ok) return candidate;
  }
  const repo = path.join(opt.work, name, 'viva');
  tools.init('viva', repo);
  for (const tree of ['min', 'base', 'web', 'base2']) {
    progress(`${name} setup: committing ${tree} (not timed)`);
    tools.commit('viva', repo, path.join(opt.corpus, tree), tree);
  }
  return repo;
}

/**
 * Read commands as a user runs them (issue 19): the whole process of `viva log`, `viva diff base base2` and
 * `viva find --stdin` of 1000 checksums (900 of files in base and web, 100 absent) on a repository of the four
 * images, against a bare `node -e 0`, alternating, N runs each (at least 5: they are short).
 */
async function measureCli(ctx: Context): Promise<Row[]> {
  const { opt } = ctx;
  const repo = fourImageRepo(ctx, 'cli');
  const sumsFile = path.join(opt.work, 'cli-sums.txt');
  const present = execFileSync('bash', ['-c', `find '${path.join(opt.corpus, 'base/usr')}' '${path.join(opt.corpus, 'web/usr/share')}' -type f -size +0 -print0 | head -z -n 900 | xargs -0 sha256sum | cut -d' ' -f1`], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const absent = Array.from({ length: 100 }, () => crypto.randomBytes(32).toString('hex')).join('\n');
  fs.writeFileSync(sumsFile, `${present.trim()}\n${absent}\n`);
  const commands: Array<[string, string[]]> = [
    ['log', ['log', '-C', repo]],
    ['diff', ['diff', '-C', repo, 'base', 'base2']],
    ['find', ['find', '-C', repo, '--stdin']],
  ];
  const runs = Math.max(5, opt.runs);
  const node: Exec[] = [];
  const execs: Record<string, Exec[]> = { log: [], diff: [], find: [] };
  const run = (args: string[]) => (args[0] === 'find'
    ? timed('bash', ['-c', `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${args.map((a) => `'${a}'`).join(' ')} < '${sumsFile}'`], { env: ctx.tools.vivaEnv })
    : timed(process.execPath, [BIN, ...args], { env: ctx.tools.vivaEnv }));
  for (const [, args] of commands) run(args); // warm the page cache
  for (let i = 0; i < runs; i++) {
    node.push(timed(process.execPath, ['-e', '0']));
    for (const [id, args] of commands) execs[id]!.push(run(args));
  }
  const floor = { ...timeCell(node), tool: 'node -e 0' };
  progress(`cli: node -e 0 ${floor.text}, ${commands.map(([id]) => `${id} ${timeCell(execs[id]!).text}`).join(', ')}`);
  const names: Record<string, string> = { log: 'viva log (4 commits)', diff: 'viva diff base base2', find: 'viva find --stdin of 1000 checksums (900 present)' };
  return commands.map(([id]) => {
    const viva = timeCell(execs[id]!);
    return {
      id: `cli-${id}`, measure: `${names[id]}, whole process (s); floor: node -e 0`, unit: 's', viva, borg: NONE, restic: NONE, floor,
      target: `≤ ${TARGET_CLI_VS_NODE} × node -e 0`, met: metRatio(viva, floor, TARGET_CLI_VS_NODE),
    };
  });
}

/** Targets of issue 11. */
const TARGET_DERIVE_ONE_S = 0.4;
const TARGET_BATCH_100_S = 2;
const TARGET_GROWTH_PER_CLONE = 10_000;
const TARGET_REBUILD_100_S = 3;
const TARGET_REBUILD_IDLE_S = 0.5;
const CLONES = 100;
const CLASSIC_CLONES = 3;

/**
 * Derive (issue 11) on base: one derive with a few --set; 100 customized clones in one `derive --batch` (hostname,
 * interfaces, machine id, ssh host keys) against the classic way (cp -a + edit + commit, 3 clones, per clone), the
 * repository growth per clone; `rebuild --derived-from` of the 100 after base moves to base2, and again with nothing
 * changed.
 */
async function measureDerive(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const repo = path.join(opt.work, 'derive', 'viva');
  tools.init('viva', repo);
  progress('derive setup: committing base (not timed)');
  const setup = tools.commit('viva', repo, path.join(opt.corpus, 'base'), 'base');
  const none = (measure: string, e: string): Row => ({ id: 'derive', measure, unit: 's', viva: errorCell(e), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' });
  if (!setup.ok) return [none('derive setup', setup.error ?? 'commit failed')];
  const viva = (args: string[]) => tools.run('viva', [process.execPath, [BIN, ...args, '-C', repo]]);
  const stored = () => (JSON.parse(viva(['stats', '--json']).stdout) as { totalStoredBytes: number }).totalStoredBytes;

  const one: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    one.push(viva(['derive', 'base', '-b', `one/${i}`, '--set', `etc/hostname=one${i}\n`, '--set', 'etc/motd=welcome\n', '--set', 'etc/timezone=Europe/Berlin\n']));
    progress(`derive one run ${i + 1}/${opt.runs}: ${describe('viva', one.at(-1)!)}`);
  }

  const spec = path.join(opt.work, 'derive', 'fleet.yaml');
  fs.writeFileSync(spec, [
    'base: base', 'variants:', `  - branch: fleet/web-{n:03}`, `    count: ${CLONES}`, '    edits:',
    '      - generate: hostname', '      - generate: machine-id', '      - generate: ssh-host-keys',
    '      - set: "etc/network/interfaces.d/eth0=auto eth0\\niface eth0 inet static\\n  address 10.0.{n}.1/24\\n"',
  ].join('\n'));
  const before = stored();
  syncDisks();
  const batch = viva(['derive', '--batch', spec]);
  progress(`derive --batch of ${CLONES}: ${describe('viva', batch)}`);
  const growth = batch.ok ? (stored() - before) / CLONES : undefined;

  // The classic way: copy the tree, edit it, commit it (per clone).
  const classic: Exec[] = [];
  for (let i = 0; i < CLASSIC_CLONES; i++) {
    const dir = path.join(opt.work, 'derive', `classic-${i}`);
    rmrf(dir);
    syncDisks();
    const e = timedShell([
      `cp -a '${path.join(opt.corpus, 'base')}' '${dir}'`,
      `printf 'classic${i}\n' > '${dir}/etc/hostname'`,
      `mkdir -p '${dir}/etc/network/interfaces.d' && printf 'auto eth0\n' > '${dir}/etc/network/interfaces.d/eth0'`,
      `rm -f '${dir}'/etc/ssh/ssh_host_* && ssh-keygen -q -A -f '${dir}'`,
      `'${process.execPath}' '${BIN}' commit -C '${repo}' '${dir}' -b classic/${i} -m classic`,
    ].join(' && '), { env: tools.vivaEnv });
    classic.push(e);
    progress(`classic clone ${i + 1}/${CLASSIC_CLONES}: ${describe('cp -a + edit + commit', e)}`);
    rmrf(dir);
  }

  // The base moves on: base2 committed on branch base; every clone is replayed, then nothing is left to do.
  progress('derive: committing base2 as the next base (not timed)');
  tools.commit('viva', repo, path.join(opt.corpus, 'base2'), 'base');
  syncDisks();
  const rebuild1 = viva(['rebuild', '--derived-from', 'base', '--json']);
  progress(`rebuild --derived-from base: ${describe('viva', rebuild1)}`);
  const rebuild2 = viva(['rebuild', '--derived-from', 'base', '--json']);
  progress(`rebuild again: ${describe('viva', rebuild2)}`);
  const counts = (e: Exec) => { try { return JSON.parse(e.stdout) as { rebuilt: number; unchanged: number; failed: number }; } catch { return undefined; } };
  const c1 = counts(rebuild1);
  const c2 = counts(rebuild2);

  // Disk clones: base.qcow2 committed, one clone derived (its ext4 patched in place), checked out as an overlay.
  const diskRows: Row[] = [];
  const qcow = path.join(opt.corpus, 'images/base.qcow2');
  progress('derive: committing images/base.qcow2 (not timed)');
  const dc = tools.run('viva', [process.execPath, [BIN, 'commit', '-C', repo, qcow, '-b', 'vm/base', '-m', 'base disk', '--json']]);
  if (dc.ok) {
    const beforeDisk = stored();
    const dd = viva(['derive', 'vm/base', '-b', 'vm/web-01', '--set', 'etc/hostname=web-01\n', '--set', 'etc/motd=web 01\n']);
    progress(`derive on the disk: ${describe('viva', dd)}`);
    const diskGrowth = dd.ok ? stored() - beforeDisk : undefined;
    const baseOut = path.join(opt.work, 'derive', 'base.qcow2');
    rmrf(baseOut);
    viva(['checkout', 'vm/base', baseOut]);
    const overlays: Exec[] = [];
    let overlayBytes = 0;
    for (let i = 0; i <= opt.runs; i++) {
      const out = path.join(opt.work, 'derive', `web-01-${i}.qcow2`);
      rmrf(out);
      overlays.push(viva(['checkout', 'vm/web-01', out, '--backing', baseOut]));
      progress(`overlay checkout ${i === 0 ? '(checks the backing file)' : '(backing known)'}: ${describe('viva', overlays.at(-1)!)}`);
      if (fs.existsSync(out)) overlayBytes = fs.statSync(out).size;
    }
    const cached = timeCell(overlays.slice(1));
    // The peer: virt-customize (libguestfs) making the same hostname edit on a qcow2 overlay of the base. Its
    // appliance runs under TCG here (force_tcg: this machine's KVM cannot run qemu's guest), as a peer would on CI.
    let peer: Cell = NONE;
    if (timed('sh', ['-c', 'command -v virt-customize']).ok) {
      const ov = path.join(opt.work, 'derive', 'virt-customize.qcow2');
      rmrf(ov);
      must('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseOut, '-F', 'qcow2', ov]);
      const env = { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };
      const vc = timed('virt-customize', ['-q', '-a', ov, '--hostname', 'web-01'], { env });
      progress(`virt-customize --hostname: ${describe('virt-customize', vc)}`);
      peer = { ...timeCell([vc]), tool: 'virt-customize (TCG)' };
    }
    const vivaBoth = dd.ok && cached.value !== undefined ? dd.secs + cached.value : undefined;
    diskRows.push(
      {
        id: 'virt-customize', measure: 'hostname edit of a disk clone: viva derive + overlay checkout against virt-customize on an overlay (s)', unit: 's',
        viva: vivaBoth === undefined ? NONE : { text: fmtSecs(vivaBoth), value: vivaBoth }, borg: NONE, restic: NONE, floor: peer,
        target: 'report the ratio', met: vivaBoth && peer.value ? `${(peer.value / vivaBoth).toFixed(0)}× faster` : '?',
      },
      {
        id: 'derive-disk', measure: 'derive on base.qcow2 (ext4 patched in place), two --set (s); floor: repository growth', unit: 's', viva: timeCell([dd]), borg: NONE, restic: NONE,
        floor: diskGrowth === undefined ? NONE : { text: `${Math.round(diskGrowth)} B`, value: diskGrowth }, target: '—', met: '—',
      },
      {
        id: 'overlay', measure: 'checkout of the disk clone as a qcow2 overlay (s; first run checks the backing file)', unit: 's', viva: cached, borg: NONE, restic: NONE,
        floor: { text: `first ${fmtSecs(overlays[0]!.secs)} s; overlay ${fmtBytes(overlayBytes)}`, first: overlays[0]!.secs, bytes: overlayBytes },
        target: '≤ 0.5 s and ≤ 1 MB per clone', met: cached.value === undefined ? '?' : yes(cached.value <= 0.5 && overlayBytes <= 1 << 20),
      },
    );
  } else {
    diskRows.push(none('derive on a disk: commit of images/base.qcow2', dc.error ?? 'failed'));
  }

  const perClone = batch.ok ? batch.secs / CLONES : undefined;
  const classicCell = timeCell(classic);
  const ratio = perClone && classicCell.value ? classicCell.value / perClone : undefined;
  const oneCell = timeCell(one);
  const batchCell = timeCell([batch]);
  return [
    {
      id: 'derive-one', measure: 'one derive with three --set on base, CLI incl. node start (s)', unit: 's', viva: oneCell, borg: NONE, restic: NONE, floor: NONE,
      target: `≤ ${TARGET_DERIVE_ONE_S} s`, met: oneCell.value === undefined ? '?' : yes(oneCell.value <= TARGET_DERIVE_ONE_S),
    },
    {
      id: 'derive-batch', measure: `${CLONES} customized clones in one derive --batch (s); floor: cp -a + edit + commit, per clone`, unit: 's', viva: batchCell, borg: NONE, restic: NONE,
      floor: { ...classicCell, tool: 'cp -a + edit + ssh-keygen -A + viva commit' },
      target: `≤ ${TARGET_BATCH_100_S} s; classic ≥ 100× slower per clone`,
      met: batchCell.value === undefined ? '?' : `${yes(batchCell.value <= TARGET_BATCH_100_S)}; classic/derive per clone ${ratio ? `${ratio.toFixed(0)}×` : '?'}`,
    },
    {
      id: 'derive-growth', measure: 'repository growth per clone (bytes)', unit: 'B', viva: growth === undefined ? NONE : { text: `${Math.round(growth)} B`, value: growth },
      borg: NONE, restic: NONE, floor: NONE, target: `≤ ${TARGET_GROWTH_PER_CLONE / 1000} KB`, met: growth === undefined ? '?' : yes(growth <= TARGET_GROWTH_PER_CLONE),
    },
    {
      id: 'rebuild', measure: `rebuild --derived-from base of the ${CLONES + opt.runs} clones after base moved (s)`, unit: 's', viva: timeCell([rebuild1], c1 ? { ...c1 } : {}), borg: NONE, restic: NONE,
      floor: { text: c1 ? `${c1.rebuilt} rebuilt, ${c1.unchanged} unchanged, ${c1.failed} failed` : '—' },
      target: `≤ ${TARGET_REBUILD_100_S} s`, met: rebuild1.ok ? yes(rebuild1.secs <= TARGET_REBUILD_100_S) : '?',
    },
    {
      id: 'rebuild-idle', measure: 'rebuild again with nothing changed (s)', unit: 's', viva: timeCell([rebuild2], c2 ? { ...c2 } : {}), borg: NONE, restic: NONE,
      floor: { text: c2 ? `${c2.rebuilt} rebuilt, ${c2.unchanged} unchanged` : '—' },
      target: `≤ ${TARGET_REBUILD_IDLE_S} s, 0 new commits`, met: rebuild2.ok && c2 ? yes(rebuild2.secs <= TARGET_REBUILD_IDLE_S && c2.rebuilt === 0) : '?',
    },
    ...diskRows,
  ];
}

/** The packages that turn base into base2 (with their dependencies from the corpus cache), and the web set. */
const TOOLS_PACKAGES = ['htop', 'tmux', 'rsync', 'jq'];
/** The web set the corpus builder installs on top of base (build-debian.sh WEB_PKGS). */
const WEB_PACKAGES = ['apache2', 'libapache2-mod-php', 'php-mysql', 'php-gd', 'php-xml', 'php-curl', 'php-mbstring', 'mariadb-server', 'mariadb-client'];
const FLEET_CLONES = 20;
const TARGET_INSTALL_VS_CLASSIC = 0.5;
const TARGET_INSTALL_AGAIN_S = 0.3;
const TARGET_FLEET_VS_ONE = 3;
/**
 * What a viva install leaves different from apt-get install of the same .debs by design (docs/packages.md): dpkg's
 * backup and logs, caches keyed by inodes and times, and apt's own state (its caches and logs; extended_states,
 * which apt rewrites in its cache order and where it marks .deb files given by path as manual).
 */
const EXPECTED_INSTALL_DIFFS = [/^var\/lib\/dpkg\/status-old$/, /^var\/log\/(dpkg|alternatives)\.log$/, /^var\/cache\/ldconfig\/aux-cache$/,
  /^var\/cache\/man\//, /^var\/lib\/apt\/extended_states$/, /^var\/cache\/apt\//, /^var\/log\/apt(\/|$)/, /^var\/lib\/apt\/lists\/auxfiles$/,
  /^var\/cache\/debconf\/(config|templates)\.dat-old$/,
  // What scripts generate with times or random ids in it: mariadb's postinst makes its system database.
  /^var\/lib\/mysql\//,
  // ucf keeps a copy of its registry per run: the number of dpkg runs differs (apt splits them otherwise).
  /^var\/lib\/ucf\/(hashfile|registry)\.\d+$/];
/** Files whose lines are written in the order packages are unpacked or configured: compared as sets of lines. */
const ORDER_ONLY_DIFFS = [/^var\/lib\/dpkg\/triggers\/File$/, /^var\/lib\/ucf\/(hashfile|registry)$/];

/**
 * A new viva repository under the work directory with the corpus's base committed on `base` (not timed), for the
 * measures that start from it; or the row saying why it could not be made.
 */
function baseRepo(ctx: Context, id: string): { row: Row } | { dir: string; repo: string; cache: string; viva: (args: string[]) => Exec; none: (measure: string, e: string) => Row } {
  const { opt, tools } = ctx;
  const dir = path.join(opt.work, id);
  const repo = path.join(dir, 'viva');
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  tools.init('viva', repo);
  progress(`${id} setup: committing base (not timed)`);
  const none = (measure: string, e: string): Row => ({ id, measure, unit: 's', viva: errorCell(e), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' });
  const setup = tools.commit('viva', repo, path.join(opt.corpus, 'base'), 'base');
  if (!setup.ok) return { row: none(`${id} setup`, setup.error ?? 'commit failed') };
  return { dir, repo, cache: path.join(opt.corpus, 'cache'), viva: (args: string[]) => tools.run('viva', [process.execPath, [BIN, ...args, '-C', repo]]), none };
}

/**
 * The differences between images `a` and `b` (viva diff) outside the documented list of what an install by viva
 * leaves different from apt's; files written in another order compare as sets of lines. Undefined: diff failed.
 */
function unexpectedDiffs(viva: (args: string[]) => Exec, a: string, b: string): string[] | undefined {
  const d = viva(['diff', a, b]);
  if (!d.ok && !d.stdout) return undefined;
  const lines = (rev: string, p: string) => viva(['cat', `${rev}:${p}`]).stdout.split('\n').sort().join('\n');
  const out = d.stdout.split('\n').filter(Boolean).filter((l) => {
    const m = /^(\S+)\t(\S+)(?:\t(.*))?$/.exec(l);
    if (!m || m[3] === '[mtime]' || EXPECTED_INSTALL_DIFFS.some((re) => re.test(m[2]!))) return false;
    if (m[1] === 'M' && ORDER_ONLY_DIFFS.some((re) => re.test(m[2]!)) && lines(a, m[2]!) === lines(b, m[2]!)) return false;
    return true;
  });
  if (out.length) progress(`unexpected differences ${a} → ${b}:\n${out.slice(0, 30).join('\n')}`);
  return out;
}

/**
 * Packages (issue 12): `viva install` of htop tmux rsync jq (and their dependencies) from the corpus cache into base,
 * against the classic way (viva checkout base, chroot apt-get install the same .debs, viva commit); the same request again;
 * the same install across 20 clones (--branches); conformance: viva diff of the two results, differences outside the
 * documented list counted; the web set when the cache holds it.
 */
async function measurePackages(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const w = baseRepo(ctx, 'packages');
  if ('row' in w) return [w.row];
  const { dir, repo, cache, viva, none } = w;
  const stored = () => (JSON.parse(viva(['stats', '--json']).stdout) as { totalStoredBytes: number }).totalStoredBytes;

  // viva, cold: the first install in this repository (each .deb read, the checkout of base made).
  syncDisks();
  const cold = viva(['install', 'base', ...TOOLS_PACKAGES, '-b', 'tools/viva', '--from', cache, '--json']);
  progress(`install cold: ${describe('viva', cold)}`);
  if (!cold.ok) return [none('install htop tmux rsync jq', cold.error ?? 'failed')];
  const installed = (JSON.parse(cold.stdout) as { items: Array<{ installed: Array<{ name: string; version: string; arch: string }> }> }).items[0]!.installed;
  const debs = installed.map((p) => path.join(cache, `${p.name}_${p.version.replace(':', '%3a')}_${p.arch}.deb`));
  // viva, warm: records and checkout kept; a new request (another order) so that nothing is memoized.
  const warm: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    // A rotation of the request is another recipe: nothing memoized, the same packages.
    const k = (i % (TOOLS_PACKAGES.length - 1)) + 1;
    const order = [...TOOLS_PACKAGES.slice(k), ...TOOLS_PACKAGES.slice(0, k)];
    syncDisks();
    warm.push(viva(['install', 'base', ...order, '-b', `tools/warm-${i}`, '--from', cache, '-m', `warm ${i}`]));
    progress(`install warm run ${i + 1}/${opt.runs}: ${describe('viva', warm.at(-1)!)}`);
  }
  // Again: the same request as the cold one.
  const before = stored();
  const again: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    again.push(viva(['install', 'base', ...TOOLS_PACKAGES, '-b', `tools/again-${i}`, '--from', cache]));
    progress(`install again run ${i + 1}/${opt.runs}: ${describe('viva', again.at(-1)!)}`);
  }
  const commitsBytes = (stored() - before);

  // The classic way: check base out, apt-get install the same .deb files in a chroot (apt orders the dpkg runs;
  // services kept from starting, as mmdebstrap does), commit the result.
  const classicRun = (files: string[], branch: string): Exec => {
    const co = path.join(dir, 'classic');
    rmrf(co);
    syncDisks();
    const e = timedShell([
      `'${process.execPath}' '${BIN}' checkout base '${co}' -C '${repo}' >/dev/null`,
      `mkdir -p '${co}/tmp/debs' && cp ${files.map((d) => `'${d}'`).join(' ')} '${co}/tmp/debs/'`,
      `printf '#!/bin/sh\\nexit 101\\n' > '${co}/usr/sbin/policy-rc.d' && chmod 755 '${co}/usr/sbin/policy-rc.d'`,
      `unshare --mount --pid --fork --mount-proc='${co}/proc' chroot '${co}' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold /tmp/debs/*.deb' >/dev/null`,
      `rm -rf '${co}/tmp/debs' '${co}/usr/sbin/policy-rc.d'`,
      `'${process.execPath}' '${BIN}' commit '${co}' -b ${branch} -m classic -C '${repo}' >/dev/null`,
    ].join(' && '), { env: tools.vivaEnv });
    rmrf(co);
    return e;
  };
  const classic: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    classic.push(classicRun(debs, `tools/classic-${i}`));
    progress(`classic install run ${i + 1}/${opt.runs}: ${describe('checkout + apt-get install + commit', classic.at(-1)!)}`);
  }
  // Conformance: dpkg's result against viva's.
  const conformance = (a: string, b: string) => unexpectedDiffs(viva, a, b);
  const unexpected = conformance('tools/classic-0', 'tools/viva');

  // Fleet: 20 clones of base, the same install on each.
  const spec = path.join(dir, 'fleet.yaml');
  fs.writeFileSync(spec, ['base: base', 'variants:', `  - branch: fleet/c{n:02}`, `    count: ${FLEET_CLONES}`, '    edits:',
    '      - generate: hostname', '      - generate: machine-id', '      - generate: ssh-host-keys'].join('\n'));
  viva(['derive', '--batch', spec]);
  syncDisks();
  const fleet = viva(['install', '--branches', 'fleet/*', ...TOOLS_PACKAGES, '--from', cache, '--json']);
  progress(`install --branches of ${FLEET_CLONES} clones: ${describe('viva', fleet)}`);
  const fleetDone = fleet.ok ? (JSON.parse(fleet.stdout) as { done: number }).done : 0;

  // The web set, when the corpus cache has it.
  const webRows: Row[] = [];
  const haveWeb = fs.readdirSync(cache).some((n) => n.startsWith('apache2_'));
  if (haveWeb) {
    syncDisks();
    const w = viva(['install', 'base', ...WEB_PACKAGES, '-b', 'web/viva', '--from', cache, '--json']);
    progress(`install web set: ${describe('viva', w)}`);
    const webDebs = w.ok ? (JSON.parse(w.stdout) as { items: Array<{ installed: Array<{ name: string; version: string; arch: string }> }> }).items[0]!.installed
      .map((p) => path.join(cache, `${p.name}_${p.version.replace(':', '%3a')}_${p.arch}.deb`)) : [];
    const wc = w.ok ? classicRun(webDebs, 'web/classic') : undefined;
    if (wc) progress(`classic web install: ${describe('checkout + apt-get install + commit', wc)}`);
    const webUnexpected = wc?.ok ? conformance('web/classic', 'web/viva') : undefined;
    const wCell = timeCell([w], { packages: webDebs.length });
    const wcCell = wc ? timeCell([wc]) : NONE;
    webRows.push({
      id: 'install-web', measure: `install the web set (${WEB_PACKAGES.length} named, ${webDebs.length} packages) into base (s); floor: checkout + apt-get install + commit`, unit: 's', viva: wCell, borg: NONE, restic: NONE,
      floor: { ...wcCell, tool: 'classic' }, target: 'measure', met: metRatio(wCell, wcCell, 1),
    });
    webRows.push({
      id: 'install-web-conformance', measure: 'web set: differences from apt-get install outside the documented list (count)', unit: '',
      viva: webUnexpected === undefined ? NONE : { text: String(webUnexpected.length), value: webUnexpected.length }, borg: NONE, restic: NONE, floor: NONE,
      target: '0', met: webUnexpected === undefined ? '?' : yes(webUnexpected.length === 0),
    });
  } else {
    webRows.push({ id: 'install-web', measure: `install ${WEB_PACKAGES.join(' ')} into base (s)`, unit: 's', viva: { text: 'not in the corpus cache' }, borg: NONE, restic: NONE, floor: NONE, target: 'measure', met: '?' });
  }

  const coldCell = timeCell([cold]);
  const warmCell = timeCell(warm);
  const classicCell = timeCell(classic);
  const againCell = timeCell(again);
  const fleetCell = timeCell([fleet], { done: fleetDone });
  return [
    {
      id: 'install', measure: `install ${TOOLS_PACKAGES.join(' ')} (+${installed.length - TOOLS_PACKAGES.length} deps) into base, first in the repository (s); floor: checkout + chroot apt-get install + commit`, unit: 's',
      viva: coldCell, borg: NONE, restic: NONE, floor: { ...classicCell, tool: 'viva checkout + apt-get install + viva commit' },
      target: `≤ ${TARGET_INSTALL_VS_CLASSIC} × classic`, met: metRatio(coldCell, classicCell, TARGET_INSTALL_VS_CLASSIC),
    },
    {
      id: 'install-warm', measure: 'the same packages, another request (records and checkout of base kept) (s)', unit: 's',
      viva: warmCell, borg: NONE, restic: NONE, floor: { ...classicCell, tool: 'classic' },
      target: `≤ ${TARGET_INSTALL_VS_CLASSIC} × classic`, met: metRatio(warmCell, classicCell, TARGET_INSTALL_VS_CLASSIC),
    },
    {
      id: 'install-again', measure: 'the same request again (s); floor: bytes added', unit: 's', viva: againCell, borg: NONE, restic: NONE,
      floor: { text: `${commitsBytes} B for ${opt.runs} commits`, value: commitsBytes },
      target: `≤ ${TARGET_INSTALL_AGAIN_S} s, ~0 bytes`, met: againCell.value === undefined ? '?' : yes(againCell.value <= TARGET_INSTALL_AGAIN_S),
    },
    {
      id: 'install-fleet', measure: `the same install across ${FLEET_CLONES} clones of base (--branches) (s); floor: one install (cold)`, unit: 's', viva: fleetCell, borg: NONE, restic: NONE,
      floor: { ...coldCell, tool: 'one install' },
      target: `≤ ${TARGET_FLEET_VS_ONE} × one install, ${FLEET_CLONES} done`, met: `${metRatio(fleetCell, coldCell, TARGET_FLEET_VS_ONE)}; ${fleetDone} done`,
    },
    {
      id: 'install-conformance', measure: 'differences from apt-get install outside the documented list (count)', unit: '', viva: unexpected === undefined ? errorCell('diff failed') : { text: String(unexpected.length), value: unexpected.length },
      borg: NONE, restic: NONE, floor: NONE, target: '0', met: unexpected === undefined ? '?' : yes(unexpected.length === 0),
    },
    ...webRows,
  ];
}

const TARGET_MERGE_VARIANTS_S = 0.3;
const TARGET_MERGE_INSTALLS_S = 0.5;
const TARGET_MERGE_2000_S = 1;

/**
 * Merge (issue 13) on base: two derived variants (a few files each); two installs (htop tmux / rsync jq) merged and
 * compared with installing all four at once; two images that differ in 2,000 files.
 */
async function measureMerge(ctx: Context): Promise<Row[]> {
  const { opt } = ctx;
  const w = baseRepo(ctx, 'merge');
  if ('row' in w) return [w.row];
  const { dir, cache, viva, none } = w;
  viva(['derive', 'base', '-b', 'v/a', '--set', 'etc/hostname=a\n', '--set', 'etc/motd=a\n', '--set', 'etc/a.conf=x=1\n']);
  viva(['derive', 'base', '-b', 'v/b', '--set', 'etc/timezone=Europe/Berlin\n', '--set', 'etc/b.conf=y=2\n', '--chmod', '0600:etc/b.conf']);
  const variants: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    variants.push(viva(['merge', 'v/a', 'v/b', '-b', `v/ab-${i}`]));
    progress(`merge of two variants run ${i + 1}/${opt.runs}: ${describe('viva', variants.at(-1)!)}`);
  }
  const i1 = viva(['install', 'base', 'htop', 'tmux', '-b', 'i/htop-tmux', '--from', cache]);
  const i2 = viva(['install', 'base', 'rsync', 'jq', '-b', 'i/rsync-jq', '--from', cache]);
  const i4 = viva(['install', 'base', 'htop', 'tmux', 'rsync', 'jq', '-b', 'i/all', '--from', cache]);
  if (!i1.ok || !i2.ok || !i4.ok) return [none('merge setup: installs', (i1.error ?? i2.error ?? i4.error) ?? 'install failed')];
  const installs: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    installs.push(viva(['merge', 'i/htop-tmux', 'i/rsync-jq', '-b', `i/merged-${i}`]));
    progress(`merge of two installs run ${i + 1}/${opt.runs}: ${describe('viva', installs.at(-1)!)}`);
  }
  const unexpected = installs[0]?.ok ? unexpectedDiffs(viva, 'i/all', 'i/merged-0') : undefined;
  // Two images that differ in 2,000 files: 1,000 new files on each side.
  for (const side of ['x', 'y']) {
    const host = path.join(dir, side);
    for (let i = 0; i < 1000; i++) {
      const sub = path.join(host, `d${Math.floor(i / 100)}`);
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, `f${i}.txt`), `${side} ${i}\n`);
    }
    viva(['derive', 'base', '-b', `big/${side}`, '--add', `${host}:usr/share/${side}`, '--set', `etc/${side}=1\n`]);
  }
  const big: Exec[] = [];
  for (let i = 0; i < opt.runs; i++) {
    big.push(viva(['merge', 'big/x', 'big/y', '-b', `big/xy-${i}`]));
    progress(`merge of images 2,000 files apart run ${i + 1}/${opt.runs}: ${describe('viva', big.at(-1)!)}`);
  }
  const vCell = timeCell(variants);
  const iCell = timeCell(installs);
  const bCell = timeCell(big);
  return [
    { id: 'merge-variants', measure: 'merge two derived variants of base (a few changed files each), CLI incl. node start (s)', unit: 's', viva: vCell, borg: NONE, restic: NONE, floor: NONE,
      target: `≤ ${TARGET_MERGE_VARIANTS_S} s`, met: vCell.value === undefined ? '?' : yes(vCell.value <= TARGET_MERGE_VARIANTS_S) },
    { id: 'merge-installs', measure: 'merge base+htop/tmux with base+rsync/jq (s); floor: differences from installing all four, outside the documented list', unit: 's', viva: iCell, borg: NONE, restic: NONE,
      floor: unexpected === undefined ? NONE : { text: `${unexpected.length} differences`, value: unexpected.length },
      target: `≤ ${TARGET_MERGE_INSTALLS_S} s; 0 differences`, met: iCell.value === undefined || unexpected === undefined ? '?' : yes(iCell.value <= TARGET_MERGE_INSTALLS_S && unexpected.length === 0) },
    { id: 'merge-2000', measure: 'merge two images that differ in 2,000 files (s)', unit: 's', viva: bCell, borg: NONE, restic: NONE, floor: NONE,
      target: `≤ ${TARGET_MERGE_2000_S} s`, met: bCell.value === undefined ? '?' : yes(bCell.value <= TARGET_MERGE_2000_S) },
  ];
}

/**
 * The web view (issue 17): server time (its Server-Timing header) of the namespace page with 1,000 branches, the
 * comparison of base and base2, and the first page of a 5,000-entry directory, served in process on 127.0.0.1 from a
 * copy of a repository holding base and base2 (the probe adds the branches and the directory to the copy).
 */
async function measureWeb(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const repo = path.join(opt.work, 'web', 'viva');
  rmrf(path.dirname(repo));
  fs.mkdirSync(path.dirname(repo), { recursive: true });
  const made = path.join(opt.work, 'size', 'viva');
  if (fs.existsSync(path.join(made, '.viva'))) {
    progress('web setup: copying the size measure\'s repository (not timed)');
    execFileSync('cp', ['-a', made, repo]);
  } else {
    tools.init('viva', repo);
    for (const tree of ['base', 'base2']) {
      progress(`web setup: committing ${tree} (not timed)`);
      tools.commit('viva', repo, path.join(opt.corpus, tree), tree);
    }
  }
  const probe = timed(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/web-probe.ts'), repo, String(Math.max(3, opt.runs))], { cwd: ROOT });
  if (!probe.ok) return [{ id: 'web', measure: 'web probe', unit: 'ms', viva: errorCell(probe.error ?? 'failed'), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' }];
  const r = JSON.parse(probe.stdout.trim().split('\n').pop()!) as Record<string, { coldMs: number; ms: number }>;
  progress(`web: ${JSON.stringify(r)}`);
  rmrf(path.dirname(repo));
  const row = (id: string, measure: string, v: { coldMs: number; ms: number }, target: number): Row => ({
    id, measure, unit: 'ms', viva: { text: `${v.ms.toFixed(1)} ms`, value: v.ms, coldMs: v.coldMs }, borg: NONE, restic: NONE,
    floor: { text: `first request ${v.coldMs.toFixed(1)} ms`, value: v.coldMs }, target: `≤ ${target} ms`, met: yes(v.ms <= target),
  });
  return [
    row('web-namespace', 'web view: namespace page of a repository with 1,000 branches, server time (ms, median); floor: the first request', r.namespace!, TARGET_WEB_NAMESPACE_MS),
    row('web-compare', 'web view: compare base vs base2 page, server time (ms, median); floor: the first request', r.compare!, TARGET_WEB_COMPARE_MS),
    row('web-directory', 'web view: a directory page of 5,000 entries (paged), server time (ms, median); floor: the first request', r.directory!, TARGET_WEB_DIRECTORY_MS),
  ];
}

/**
 * A Ceph radosgw for the s3 measure: the one VIVA_TEST_S3 names, else one started here with `.ci/ceph up --store
 * bluestore` (memstore's RAM grows with the data), stopped at the end.
 */
function s3Server(opt: Options): { endpoint: string; stop: () => void } | { error: string } {
  if (process.env.VIVA_TEST_S3) return { endpoint: process.env.VIVA_TEST_S3, stop: () => undefined };
  const dir = path.join(opt.work, 'ceph');
  rmrf(dir);
  const up = timed('bash', [path.join(ROOT, '.ci/ceph'), 'up', dir, '--store', 'bluestore'], { cwd: ROOT });
  if (!up.ok) return { error: `.ci/ceph up: ${up.error}` };
  return { endpoint: 'http://127.0.0.1:7480', stop: () => { timed('bash', [path.join(ROOT, '.ci/ceph'), 'down', dir], { cwd: ROOT }); } };
}

async function measureS3(ctx: Context): Promise<Row[]> {
  const { opt, tools } = ctx;
  const server = s3Server(opt);
  const none = (id: string, measure: string, error: string): Row => ({ id, measure, unit: 's', viva: errorCell(error), borg: NONE, restic: NONE, floor: NONE, target: '', met: '?' });
  if ('error' in server) return [none('s3', 'repositories in a bucket (Ceph RGW)', server.error)];
  const dir = path.join(opt.work, 's3');
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...tools.vivaEnv, AWS_ACCESS_KEY_ID: 'viva-ci', AWS_SECRET_ACCESS_KEY: 'viva-ci-secret', AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  let n = 0;
  const url = () => `s3://viva-ci/bench-${process.pid}-${n++}?endpoint=${encodeURIComponent(server.endpoint)}`;
  const viva = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    // `find --stdin` reads the checksums from a file given as '<FILE'.
    const input = args.find((a) => a.startsWith('<'));
    if (!input) return timed(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env, ...extra } });
    const argv = args.filter((a) => a !== input).map((a) => `'${a}'`).join(' ');
    return timed('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${argv} ${input}`], { cwd: dir, env: { ...env, ...extra } });
  };
  const need = (e: Exec, what: string) => { if (!e.ok) throw new Error(`${what}: ${e.error}`); return e; };
  const cache = () => path.join(dir, `cache-${n++}`);
  const base = path.join(opt.corpus, 'base');
  const rows: Row[] = [];
  try {
    warmUp(opt, 'base');
    // Commit base: into a new local repository, and into a new bucket repository (its cache fresh too).
    const local: Exec[] = [];
    const bucket: Exec[] = [];
    let lastUrl = '';
    for (let i = 0; i < opt.heavyRuns; i++) {
      const repo = path.join(dir, `local-${i}`);
      tools.init('viva', repo);
      local.push(viva(['commit', '-C', repo, base, '-b', 'base', '-m', 'base', '-q']));
      lastUrl = url();
      const bound = path.join(dir, `bound-${i}`);
      need(viva(['init', '--storage', lastUrl, bound]), 'init --storage');
      bucket.push(viva(['commit', '-C', bound, base, '-b', 'base', '-m', 'base', '-q']));
      progress(`s3 commit base run ${i + 1}: ${describe('local', local.at(-1)!)}, ${describe('bucket', bucket.at(-1)!)}`);
    }
    const commitRow: Row = { id: 's3-commit', measure: 'commit base into a bucket repository (s); floor: into a local one', unit: 's',
      viva: timeCell(bucket), borg: NONE, restic: NONE, floor: timeCell(local), target: `≤ ${TARGET_S3_COMMIT_VS_LOCAL} × local`, met: '' };
    commitRow.met = metRatio(commitRow.viva, commitRow.floor, TARGET_S3_COMMIT_VS_LOCAL);
    rows.push(commitRow);

    // Clone base from the bucket into a new local repository (fresh cache each) vs a path clone of the local one.
    const pathClones: Exec[] = [];
    const bucketClones: Exec[] = [];
    for (let i = 0; i < opt.runs; i++) {
      rmrf(path.join(dir, 'c1'));
      rmrf(path.join(dir, 'c2'));
      pathClones.push(viva(['clone', '-q', path.join(dir, 'local-0'), path.join(dir, 'c1')]));
      bucketClones.push(viva(['clone', '-q', lastUrl, path.join(dir, 'c2')], { VIVA_CACHE_DIR: cache() }));
      progress(`s3 clone run ${i + 1}: ${describe('path', pathClones.at(-1)!)}, ${describe('bucket', bucketClones.at(-1)!)}`);
    }
    const cloneRow: Row = { id: 's3-clone', measure: 'clone of base from a bucket repository to a local one (s); floor: a path clone', unit: 's',
      viva: timeCell(bucketClones), borg: NONE, restic: NONE, floor: timeCell(pathClones), target: `≤ ${TARGET_S3_CLONE_VS_PATH} × path clone`, met: '' };
    cloneRow.met = metRatio(cloneRow.viva, cloneRow.floor, TARGET_S3_CLONE_VS_PATH);
    rows.push(cloneRow);

    // Two hosts (processes with their own caches) commit base and web at once vs the slower of the two alone.
    const alone: number[] = [];
    const together: Exec[] = [];
    for (let i = 0; i < opt.heavyRuns; i++) {
      const solo = url();
      need(viva(['init', '--storage', solo]), 'init --storage');
      const a = viva(['-C', solo, 'commit', base, '-b', 'base', '-m', 'base', '-q'], { VIVA_CACHE_DIR: cache() });
      const b = viva(['-C', url(), 'commit', path.join(opt.corpus, 'web'), '-b', 'web', '-m', 'web', '-q'], { VIVA_CACHE_DIR: cache() });
      alone.push(Math.max(a.secs, b.secs));
      const both = url();
      need(viva(['init', '--storage', both]), 'init --storage');
      const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} -C '${both}' commit '${base}' -b base -m base -q & `
        + `VIVA_CACHE_DIR='${cache()}' ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} -C '${both}' commit '${path.join(opt.corpus, 'web')}' -b web -m web -q & wait %1 && wait %2`;
      together.push(timed('bash', ['-c', script], { cwd: dir, env: { ...env, VIVA_CACHE_DIR: cache() } }));
      progress(`s3 two hosts run ${i + 1}: alone (slower) ${fmtSecs(alone.at(-1)!)} s, ${describe('together', together.at(-1)!)}`);
    }
    const slower: Cell = { text: fmtSecs(Math.min(...alone)), value: Math.min(...alone), runs: alone };
    const concRow: Row = { id: 's3-concurrent', measure: 'two hosts commit base and web into one bucket repository at once (s); floor: the slower alone', unit: 's',
      viva: timeCell(together), borg: NONE, restic: NONE, floor: slower, target: `≤ ${TARGET_S3_CONCURRENT_VS_SLOWER} × the slower`, met: '' };
    concRow.met = metRatio(concRow.viva, concRow.floor, TARGET_S3_CONCURRENT_VS_SLOWER);
    rows.push(concRow);

    // log, diff and find with a warm cache vs the same commands on a local repository.
    const bound = path.join(dir, `bound-${opt.heavyRuns - 1}`);
    const localRepo = path.join(dir, 'local-0');
    need(viva(['commit', '-C', bound, path.join(opt.corpus, 'base2'), '-b', 'base2', '-m', 'base2', '-q']), 'commit base2');
    need(viva(['commit', '-C', localRepo, path.join(opt.corpus, 'base2'), '-b', 'base2', '-m', 'base2', '-q']), 'commit base2');
    const sums = execFileSync('bash', ['-c', `find '${base}/usr/bin' -type f | head -200 | xargs sha256sum`], { encoding: 'utf8' });
    const sumsFile = path.join(dir, 'sums.txt');
    fs.writeFileSync(sumsFile, sums);
    for (const [id, args] of [['log', ['log', 'base2']], ['diff', ['diff', '--stat', 'base', 'base2']], ['find', ['find', '--stdin', `<${sumsFile}`]]] as Array<[string, string[]]>) {
      viva(['-C', bound, ...args]);
      const l: Exec[] = [];
      const r: Exec[] = [];
      for (let i = 0; i < Math.max(3, opt.runs); i++) {
        l.push(viva(['-C', localRepo, ...args]));
        r.push(viva(['-C', bound, ...args]));
      }
      const row: Row = { id: `s3-${id}`, measure: `viva ${args.join(' ').replace(`<${sumsFile}`, '< 200 checksums')} on a bucket repository with a warm cache (s); floor: on a local one`, unit: 's',
        viva: timeCell(r), borg: NONE, restic: NONE, floor: timeCell(l), target: `≤ ${TARGET_S3_READ_VS_LOCAL} × local`, met: '' };
      row.met = metRatio(row.viva, row.floor, TARGET_S3_READ_VS_LOCAL);
      rows.push(row);
      progress(`s3 ${id}: ${row.viva.text} vs ${row.floor.text}`);
    }
  } catch (e) {
    rows.push(none('s3', 'repositories in a bucket (Ceph RGW)', (e as Error).message));
  } finally {
    server.stop();
    rmrf(dir);
  }
  return rows;
}

const RUNNERS: Record<MeasureName, (ctx: Context) => Promise<Row[]>> = {
  commit: measureCommit, recommit: measureRecommit, incremental: measureIncremental, size: measureSize,
  checkout: measureCheckout, rss: measureRss, big: measureBig, huge: measureHuge, disk: measureDisk, xfs: measureXfs, inspect: measureInspect, sync: measureSync, cli: measureCli,
  derive: measureDerive, packages: measurePackages, merge: measureMerge, nbd: measureNbd, web: measureWeb, s3: measureS3,
};

// ---------------------------------------------------------------------------------------------------------------------
// machine, table, main

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]!;
  } catch (e) {
    return `unavailable (${(e as Error).message.split('\n')[0]})`;
  }
}

function vivaRevision(): string {
  const rev = firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  let dirty = false;
  try {
    execFileSync('git', ['-C', ROOT, 'diff', '--quiet', 'HEAD'], { stdio: 'ignore' });
  } catch {
    dirty = true;
  }
  return dirty ? `${rev} + uncommitted changes` : rev;
}

/** .ts sources under src/ and commands/ that are newer than their dist/ output. */
function staleDist(): string[] {
  const stale: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of entries) {
      const r = path.join(rel, d.name);
      if (d.isDirectory()) {
        if (d.name !== 'native') walk(r);
      } else if (d.name.endsWith('.ts') && !d.name.endsWith('.d.ts')) {
        const out = path.join(ROOT, 'dist', r.replace(/\.ts$/, '.js'));
        try {
          if (fs.statSync(out).mtimeMs < fs.statSync(path.join(ROOT, r)).mtimeMs) stale.push(r);
        } catch {
          stale.push(r);
        }
      }
    }
  };
  walk('src');
  walk('commands');
  return stale;
}

interface Machine {
  host: string;
  cpu: string;
  nproc: number;
  memGiB: number;
  kernel: string;
  node: string;
  viva: string;
  borg: string;
  restic: string;
  resticRepoVersion?: string;
  zstd: string;
  tar: string;
  workFs: string;
  loadStart: [number, number, number];
  loadEnd?: [number, number, number];
}

function machineInfo(opt: Options): Machine {
  const df = firstLine('bash', ['-c', `df -T '${opt.work}' | tail -1 | awk '{print $2 " on " $1}'`]);
  return {
    host: os.hostname(), cpu: os.cpus()[0]?.model ?? 'unknown', nproc: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / GiB), kernel: os.release(), node: process.version, viva: vivaRevision(),
    borg: firstLine('borg', ['--version']), restic: firstLine('restic', ['version']),
    zstd: firstLine('zstd', ['--version']).replace(/^\W*Zstandard CLI \(\d+-bit\) (v[\d.]+).*$/, 'zstd $1'), tar: firstLine('tar', ['--version']), workFs: df, loadStart: loadAverage(),
  };
}

const fmtLoad = (l: [number, number, number]) => l.map((x) => x.toFixed(2)).join(' ');

function machineText(m: Machine, opt: Options): string {
  return [
    `- machine: ${m.host}, ${m.cpu}, nproc ${m.nproc}, ${m.memGiB} GiB RAM, Linux ${m.kernel}, node ${m.node}`,
    `- tools: viva ${m.viva}; ${m.borg}; ${m.restic}${m.resticRepoVersion ? ` (new repositories: format version ${m.resticRepoVersion})` : ''}; ${m.zstd}; ${m.tar}`,
    `- corpus: ${opt.corpus}; work dir: ${opt.work} (${m.workFs}); runs: ${opt.runs} cheap / ${opt.heavyRuns} heavy`,
    `- load average (1/5/15 min): start ${fmtLoad(m.loadStart)}${m.loadEnd ? `, end ${fmtLoad(m.loadEnd)}` : ''}`,
  ].join('\n');
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(rows: Row[]): string {
  const head = ['measure', 'viva', 'borg', 'restic', 'floor/cp', 'target', 'met?'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    lines.push(`| ${[r.measure, r.viva.text, r.borg.text, r.restic.text, r.floor.text, r.target, r.met].map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

function resticRepoVersion(tools: Tools): string | undefined {
  const repo = path.join(tools.work, 'probe-restic');
  const init = tools.init('restic', repo);
  if (!init.ok) return undefined;
  const r = tools.run('restic', ['restic', ['-r', repo, 'cat', 'config']]);
  rmrf(repo);
  try {
    return String((JSON.parse(r.stdout) as { version?: number }).version);
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const opt = parseOptions(process.argv.slice(2));
  if (process.env.CI) {
    console.error('bench: not run in CI (CI is set): it needs the Debian corpus and 10–15 minutes of a quiet machine');
    return 0;
  }
  const trees = [...new Set(opt.only.flatMap((m) => TREES_NEEDED[m]))];
  const missing = trees.filter((t) => !fs.existsSync(path.join(opt.corpus, t)));
  if (!fs.existsSync(opt.corpus) || missing.length > 0) {
    const what = fs.existsSync(opt.corpus) ? `tree(s) ${missing.map((t) => `'${path.join(opt.corpus, t)}'`).join(', ')}` : `'${opt.corpus}'`;
    console.error(`bench: the corpus is missing: ${what}
build it (as root, needs mmdebstrap e2fsprogs qemu-utils; about 30 minutes) with:
  CORPUS=${opt.corpus} bash ../shared/corpus/build-debian.sh all${fs.existsSync(BUILD_SCRIPT) ? `\n  (${BUILD_SCRIPT})` : ''}`);
    return 2;
  }
  const stale = staleDist();
  if (stale.length > 0) {
    console.error(`bench: warning: dist/ is older than ${stale.length} source file(s) (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', …' : ''}): run 'npm run build' first`);
  }

  rmrf(opt.work);
  fs.mkdirSync(opt.work, { recursive: true });
  const tools = new Tools(opt.work);
  const machine = machineInfo(opt);
  machine.resticRepoVersion = resticRepoVersion(tools);
  const ctx: Context = { opt, tools, main: {}, notes: [] };
  if (machine.loadStart[0] > LOAD_WARN) {
    ctx.notes.push(`load average at start was ${machine.loadStart[0].toFixed(2)} (> ${LOAD_WARN}): other processes were running and skew the timings`);
    console.error(`bench: warning: load average is ${machine.loadStart[0].toFixed(2)} (> ${LOAD_WARN}); other processes will skew the timings`);
  }
  // A peer that is not installed leaves its column as errors: say so at once, and in the notes under the table.
  const peers: Array<[string, string]> = [['borg', machine.borg], ['restic', machine.restic], ['rsync', firstLine('rsync', ['--version'])], ['qemu-img', firstLine('qemu-img', ['--version'])]];
  const absent = peers.filter(([, v]) => v.startsWith('unavailable')).map(([name]) => name);
  if (absent.length) {
    ctx.notes.push(`not installed: ${absent.join(', ')}; their columns and floors are missing (apt-get install borgbackup restic rsync qemu-utils)`);
    console.error(`bench: warning: not installed: ${absent.join(', ')} (apt-get install borgbackup restic rsync qemu-utils); their figures will be missing`);
  }
  progress(`measures: ${opt.only.join(', ')}; work dir ${opt.work}`);
  const started = new Date();
  const rows: Row[] = [];
  /** 1-minute load average after each measure (other processes skew timings). */
  const loads: Partial<Record<MeasureName, number>> = {};
  for (const name of opt.only) {
    const t0 = Date.now();
    try {
      rows.push(...(await RUNNERS[name](ctx)));
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0]!;
      progress(`${name}: failed: ${msg}`);
      rows.push({
        id: name, measure: name, unit: '', viva: errorCell(msg), borg: NONE, restic: NONE, floor: NONE, target: '—', met: '?',
      });
    }
    const load = loadAverage()[0];
    loads[name] = load;
    progress(`${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s (load average ${load.toFixed(2)})`);
  }
  machine.loadEnd = loadAverage();

  const out = [
    '',
    machineText(machine, opt),
    '',
    table(rows),
    '',
    'times in seconds (wall clock); "a / b" = best / median of the runs; met? is checked against the best run; MB = 10^6 bytes',
    ...ctx.notes.map((n) => `note: ${n}`),
  ].join('\n');
  console.log(out);
  if (opt.json) {
    fs.mkdirSync(path.dirname(opt.json), { recursive: true });
    fs.writeFileSync(opt.json, JSON.stringify({
      started: started.toISOString(), finished: new Date().toISOString(), options: opt, machine, loadAfterMeasure: loads, notes: ctx.notes, rows,
    }, null, 2) + '\n');
    progress(`results written to ${opt.json}`);
  }
  return 0;
}

process.exitCode = await main();
