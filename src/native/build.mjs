// npm "install" script: builds the native addon with node-gyp unless an up-to-date build is already there
// (npx on the project re-runs install scripts; a needless rebuild would briefly remove the addon under running processes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const dir = path.dirname(new URL(import.meta.url).pathname);
const out = path.join(dir, 'build/Release/viva_native.node');
const mtime = (p) => { try { return fs.statSync(p).mtimeMs; } catch { return -1; } };
const newest = Math.max(mtime(path.join(dir, 'viva_native.c')), mtime(path.join(dir, 'binding.gyp')));
if (mtime(out) >= newest && !process.env.VIVA_REBUILD) process.exit(0);
const r = spawnSync('node-gyp', ['rebuild', `--directory=${dir}`], { stdio: 'inherit' });
process.exit(r.status ?? 1);
