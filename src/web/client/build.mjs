// Bundles the web view's client (src/web/client/app.ts, with uPlot and the style sheets) into dist/web/app.js and
// dist/web/app.css for `viva serve` to send: run by `npm run build`. No network access, no CDN.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
await build({
  entryPoints: { app: path.join(root, 'src/web/client/app.ts') },
  outdir: path.join(root, 'dist/web'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});
