// Runs ava and ends with the plain line CI reads: `N passed, N failed, N skipped` (ava prints no passed count on failure).
import { spawn } from 'node:child_process';

const child = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
child.stdout.on('data', (d) => {
  out += d;
  process.stdout.write(d);
});
child.on('close', (code) => {
  const n = (k) => Number((out.match(new RegExp(`^# ${k} (\\d+)`, 'm')) || [0, 0])[1]);
  const skipped = n('skip') + n('todo');
  console.log(`${n('pass')} passed, ${n('fail')} failed, ${skipped} skipped`);
  process.exit(code ?? 1);
});
