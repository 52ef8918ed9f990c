// Bundles each command (dist/commands/**/*.js as tsc wrote them) with the viva modules it imports, twice. Run by
// `npm run build` after tsc. Why: Node resolves, reads and compiles every ES module on its own, and a command
// imported about fifty of them — 10 to 15 ms of every start (`viva log` 123 -> 109 ms) for nothing a user wanted.
//
// - dist/run/**/*.cjs: one CommonJS file per command with everything it may import from dist (a dynamic import of
//   viva's own code becomes a lazily evaluated part of the same file), which bin/run.js runs. CommonJS because
//   Node 20 can compile a script with V8's code cache (vm.Script cachedData) but not an ES module: bin/run.js keeps
//   each file's compiled code after a first run (see bin/run.js). One file because Node's ES module loader costs
//   about 1 ms a module (resolution, an asynchronous read): `viva diff` 0.19 -> 0.16 s with both.
// - dist/argv.cjs: src/cli/argv.ts for bin/run.js, which is CommonJS too.
// - dist/commands/**/*.js: one ES module per command, the code commands share in dist/chunks/, loaded on demand (a
//   dynamic import stays a separate chunk); oclif loads these for help, and library users may.
//
// Packages stay external (node_modules as before). dist/src stays as tsc wrote it: worker threads, the oclif hook
// and library users (`import 'viva'`) load it. Bundled code that asks where it is (`import.meta.url`: worker
// scripts, the native addon, the web view's files, createRequire) is told the path of its own module in dist/src,
// so every relative path means what it meant before bundling.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = path.join(root, 'dist');
const commands = path.join(dist, 'commands');

/** The files under `dir` (at any depth) whose names end with `ext`. */
const filesUnder = (dir, ext) => fs.readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith(ext))
  .map((d) => path.join(d.parentPath ?? d.path, d.name));

const entryPoints = filesUnder(commands, '.js');

/** `import.meta.url` of a module under dist/ becomes that module's own URL, computed from the output file's. */
const moduleUrls = {
  name: 'viva-module-urls',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + path.sep)) return undefined;
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'js' };
      const rel = path.relative(dist, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `__vivaModuleUrl(${JSON.stringify(rel)})`), loader: 'js' };
    });
  },
};

fs.rmSync(path.join(dist, 'chunks'), { recursive: true, force: true });
fs.rmSync(path.join(dist, 'run'), { recursive: true, force: true });
// The compiled code bin/run.js kept for the files this replaces (and for packages npm may have replaced).
fs.rmSync(path.join(dist, '.code-cache'), { recursive: true, force: true });
// First, from tsc's files (the second build overwrites them).
await build({
  entryPoints,
  outbase: commands,
  outdir: path.join(dist, 'run'),
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // A dynamic import of a package becomes a require(): code compiled from V8's code cache in Node 20 has no import()
  // (its callback is lost), and the way to give one is experimental. The packages imported so have CommonJS builds.
  supported: { 'dynamic-import': false },
  packages: 'external',
  // Code in ASCII (other characters escaped); comments are made ASCII below. bin/run.js reads an ASCII file as
  // one-byte text: half the time of decoding UTF-8 (≈ 2.5 ms of every start for a 1 MB bundle).
  charset: 'ascii',
  // dist/'s URL, made once: modules ask for theirs as they load (worker scripts, the native addon).
  // The interop object of each Node built-in, made once (see below).
  banner: { js: "let __vivaDist; const __vivaModuleUrl = (rel) => { if (__vivaDist === undefined) { const u = require('node:url').pathToFileURL(__filename).href; __vivaDist = u.slice(0, u.lastIndexOf('/dist/') + 6); } return __vivaDist + rel; }; const __vivaNodeModules = new Map(); const __vivaNode = (id) => { let m = __vivaNodeModules.get(id); if (m === undefined) __vivaNodeModules.set(id, (m = __toESM(require(id), 1))); return m; };" },
  plugins: [moduleUrls],
  logLevel: 'warning',
});
// What esbuild leaves outside ASCII is in comments (it escaped the code's): escaped there too, as \u{…} — which would
// mean the same character in a string, a regular expression or a name, were one left.
// Each module that imports a Node built-in gets its own interop copy of it (`__toESM(require("node:fs"), 1)`: an
// object with a getter for each of fs's hundred properties, made 24 times in `find`): one copy for each built-in
// instead, made on first use (__vivaNode, in the banner).
for (const f of filesUnder(path.join(dist, 'run'), '.cjs')) {
  let text = fs.readFileSync(f, 'utf8');
  text = text.replace(/__toESM\(require\(("node:[a-z_/]+")\), 1\)/g, '__vivaNode($1)');
  if (/[^\x00-\x7f]/.test(text)) text = text.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  fs.writeFileSync(f, text);
}
// bin/run.js (CommonJS, see there) moves global flags before it knows the command: the function, as CommonJS.
await build({
  entryPoints: [path.join(dist, 'src', 'cli', 'argv.js')],
  outfile: path.join(dist, 'argv.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
// tsc's source maps describe the files this replaces.
for (const f of entryPoints) fs.rmSync(`${f}.map`, { force: true });
await build({
  entryPoints,
  outbase: dist,
  outdir: dist,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  // Every output file (a command or a chunk, at any depth below dist/) finds dist/ in its own URL.
  banner: { js: "const __vivaModuleUrl = (rel) => import.meta.url.slice(0, import.meta.url.lastIndexOf('/dist/') + 6) + rel;" },
  plugins: [moduleUrls],
  logLevel: 'warning',
});
