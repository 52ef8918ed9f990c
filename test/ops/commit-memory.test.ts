/**
 * Peak memory of `viva commit`, measured in the child process that commits (the kernel's high-water mark of its
 * resident set, VmHWM): the pipeline's queues and buffers are bounded, so a large file does not raise it with its size.
 */
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, viva } from '../helpers/cli.js';

const MiB = 1 << 20;
/** The file committed: random bytes (nothing to deduplicate or compress), so every byte goes through the writer. */
const FILE_SIZE = 512 * MiB;
/**
 * The bound for its commit. Measured: ≈ 160 MB (of which ≈ 50 MB are node's own mapped code); ≈ 270 MB before the
 * writer's batch buffers were reused and the per-object buffers went, and the peak then grew with the file.
 */
const MAX_PEAK_MB = 210;

/** A preload that prints the process's peak resident set (kB) on exit. */
const PRELOAD = `import fs from 'node:fs';
process.on('exit', () => {
  const m = /VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  fs.writeSync(2, 'peak-rss-kb=' + (m ? m[1] : 'unknown') + '\\n');
});
`;

const linux = process.platform === 'linux';

(linux ? test : test.skip)(`commit: a ${FILE_SIZE / MiB} MiB file peaks below ${MAX_PEAK_MB} MB of resident memory`, async (t) => {
  t.timeout(180_000);
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const fd = fs.openSync(path.join(src, 'random.bin'), 'w');
  const block = Buffer.allocUnsafe(16 * MiB);
  for (let done = 0; done < FILE_SIZE; done += block.length) fs.writeSync(fd, crypto.randomFillSync(block));
  fs.closeSync(fd);
  const preload = path.join(dir, 'peak.mjs');
  fs.writeFileSync(preload, PRELOAD);
  const repo = path.join(dir, 'repo');
  t.is((await viva(['init', repo])).code, 0);
  const r = await viva(['commit', '-C', repo, src, '-b', 'big', '-m', 'big', '-q'], { env: { NODE_OPTIONS: `--import ${preload}` }, timeoutMs: 170_000 });
  t.is(r.code, 0, r.stderr);
  const m = /peak-rss-kb=(\d+)/.exec(r.stderr);
  t.truthy(m, r.stderr);
  const peakMb = Number(m![1]) / 1024;
  t.log(`peak resident set: ${peakMb.toFixed(0)} MB`);
  t.true(peakMb < MAX_PEAK_MB, `peak resident set ${peakMb.toFixed(0)} MB`);
});
