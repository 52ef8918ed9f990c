#!/usr/bin/env node
// oclif entry. Errors raised before a command runs (an unknown command) get viva's one-line format and exit 2.
// Global flags may come before the command (`viva -C DIR log`): hoistGlobalFlags moves them after it for oclif.
// viva has no user plugins: not reading them keeps oclif from warning on every command when $HOME is unreadable.
//
// CommonJS (bin/package.json says so), though the package is ES modules: Node 20 loads an ES module entry through its
// asynchronous module loader, ≈ 8 ms of every start before the first line runs.
'use strict';
const { isAscii } = require('node:buffer');
const fs = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { hoistGlobalFlags } = require('../dist/argv.cjs');

/** The project's root (bin/..). */
const ROOT = path.join(__dirname, '..');

// A reader that stops reading (`viva log | head -1`) is a normal end, not an error: leave at once, silently, with the
// status git and cat get from SIGPIPE (128 + 13; Node ignores the signal itself). EXIT.PIPE_CLOSED in exit-codes.ts.
// Any other failed write to stdout (a full disk: `viva log > /dev/full`) is one line and exit 16 (EXIT.WRITE_FAILED).
for (const stream of [process.stdout, process.stderr]) {
  // Prepended: @oclif/core's own listener rethrows every error but EPIPE (a crash with a stack trace).
  stream.prependListener('error', (err) => {
    if (err?.code === 'EPIPE') process.exit(141);
    if (stream === process.stdout) {
      const reason = String(err?.message ?? err).replace(/^E[A-Z]+: /, '').replace(/, write$/, '');
      try { process.stderr.write(`error: cannot write to standard output: ${reason}${err?.code ? ` (${err.code})` : ''}\n`); } catch { /* nothing left to tell */ }
    }
    process.exit(16);
  });
}

/**
 * The command a command line names, when viva can run it itself: `log …` → dist/run/log.cjs, `remote add …` →
 * dist/run/remote/add.cjs (each command bundled into one CommonJS file, see src/cli/build-commands.mjs). Help
 * (`--help`/`-h` before any `--`), a topic alone, an unknown command, the version and completion are left to oclif,
 * which loads its own configuration and plugins for them (about 70 ms that a command does not need: commands parse
 * their own flags, see src/cli/command.ts).
 */
function directCommand(argv) {
  const end = argv.indexOf('--');
  const flagsPart = end === -1 ? argv : argv.slice(0, end);
  if (flagsPart.includes('--help') || flagsPart.includes('-h')) return undefined;
  const words = [];
  for (const w of argv) {
    if (w.startsWith('-') || words.length === 2) break;
    if (!/^[a-z][a-z0-9-]*$/.test(w)) break;
    words.push(w);
  }
  const commands = path.join(ROOT, 'dist', 'run') + path.sep;
  for (let n = words.length; n > 0; n--) {
    const file = `${commands}${words.slice(0, n).join('/')}.cjs`;
    if (fs.existsSync(file)) return { id: words.slice(0, n).join(':'), file, argv: argv.slice(n) };
  }
  return undefined;
}

/**
 * V8's code cache for the files a command runs: its bundle (dist/run/…cjs) and the CommonJS files of the packages it
 * requires (lmdb, msgpackr, zstd-napi, …). A file compiled with its cache skips parsing and compiling what the last
 * run compiled: `viva diff` 0.19 -> 0.16 s with the bundling (see src/cli/build-commands.mjs). Node 20 has no such
 * cache of its own (module.enableCompileCache came in Node 22), and none for ES modules.
 *
 * The cache lives in dist/.code-cache (or $VIVA_CODE_CACHE) and is used only when it, or the directory it is to be
 * made in, belongs to the user running viva and no one else can write it: a cache that another user could write
 * would be code that user could make viva run. A cache file names its source's inode, size and change time and
 * node's version, since V8 itself checks only the source's length (and its own version and flags).
 */
class CodeCache {
  constructor() {
    this.require = createRequire(__filename);
    this.vm = this.require('node:vm');
    this.Module = this.require('node:module');
    this.root = ROOT + path.sep;
    this.dir = this.#directory();
    /** Scripts compiled without a usable cache: [cache file, script], written by keep(). */
    this.fresh = [];
  }

  /** $VIVA_CODE_CACHE when set (a directory; 0 turns the cache off), else dist/.code-cache. */
  #directory() {
    try {
      const uid = process.getuid();
      const chosen = process.env.VIVA_CODE_CACHE;
      if (chosen === '0') return undefined;
      const owner = chosen ? path.dirname(path.resolve(chosen)) : path.join(ROOT, 'dist') + path.sep;
      const dir = chosen ? path.resolve(chosen) : path.join(owner, '.code-cache');
      let st = fs.statSync(dir, { throwIfNoEntry: false });
      if (!st) {
        if (fs.statSync(owner).uid !== uid) return undefined;
        fs.mkdirSync(dir, { mode: 0o700 });
        st = fs.statSync(dir);
      }
      return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0 ? dir : undefined;
    } catch {
      return undefined;
    }
  }

  /** SHA-256 by viva's native addon, loaded for the command anyway (node:crypto would cost ≈ 2.4 ms more). */
  #digest(data) {
    this.native ??= this.require('../src/native/build/Release/viva_native.node');
    return Buffer.from(this.native.sha256Hex(data), 'hex');
  }

  /** Compiles `source` (the text of `file`) with its cache, when there is one: a vm.Script to run. */
  compile(file, source) {
    let cachePath;
    let cached;
    if (this.dir) {
      try {
        const f = fs.statSync(file);
        const rel = path.relative(this.root, file);
        const name = rel.length <= 120 ? encodeURIComponent(rel) : this.#digest(Buffer.from(rel)).toString('hex');
        // The inode and the change time: any write or replacement of the file gives another name (npm sets every
        // package file's mtime to the same 1985 date, and a newer version of a file may keep its size).
        cachePath = path.join(this.dir, `${name}-${f.ino}-${f.size}-${Math.round(f.ctimeMs * 1000)}-${process.version}-${process.arch}.v8`);
        const fd = fs.openSync(cachePath, 'r');
        let data;
        try { if (fs.fstatSync(fd).uid === process.getuid()) data = fs.readFileSync(fd); } finally { fs.closeSync(fd); }
        // V8 checks a code cache's length and versions but not its bytes (no checksum in release builds): damaged
        // code would run. Each file starts with the sha256 of the rest.
        if (data && data.length > 32 && this.#digest(data.subarray(32)).equals(data.subarray(0, 32))) cached = data.subarray(32);
      } catch { /* no cache yet */ }
    }
    const script = new this.vm.Script(this.Module.wrap(source), { filename: file, cachedData: cached });
    if (cachePath && (!cached || script.cachedDataRejected)) this.fresh.push([cachePath, script]);
    return script;
  }

  /**
   * Runs a command's file as Node would require it, and has the CommonJS files of packages it requires from now on
   * compiled with the cache too (Module#_compile, as the v8-compile-cache package does). Returns the command class.
   */
  load(file) {
    const { Module } = this;
    const cache = this;
    const packages = path.join(ROOT, 'node_modules') + path.sep;
    const compile = Module.prototype._compile;
    Module.prototype._compile = function (content, filename, format) {
      // An ES module (require() of one, as of string-width) is Node's to compile, and so is a file that only parses
      // as one (Node then detects its syntax).
      if (!filename.startsWith(packages) || format === 'module') return compile.call(this, content, filename, format);
      let script;
      try {
        script = cache.compile(filename, content);
      } catch (e) {
        if (e instanceof SyntaxError) return compile.call(this, content, filename, format);
        throw e;
      }
      const mod = this;
      const require = (id) => mod.require(id);
      require.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
      require.resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
      require.main = process.mainModule;
      require.extensions = Module._extensions;
      require.cache = Module._cache;
      const fn = script.runInThisContext({ displayErrors: true });
      return fn.call(mod.exports, mod.exports, require, mod, filename, path.dirname(filename));
    };
    // The file has no import(): the build turned its dynamic imports into require() (see build-commands.mjs).
    const module = { exports: {} };
    // The build writes the file in ASCII: read as one-byte text it needs no UTF-8 decoding (≈ 2.5 ms for 1 MB).
    const raw = fs.readFileSync(file);
    const source = isAscii(raw) ? raw.latin1Slice(0, raw.length) : raw.toString('utf8');
    this.compile(file, source).runInThisContext()
      .call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
    return module.exports.default;
  }

  /** Writes the compiled code of the scripts that had no usable cache (after the command, which compiled more). */
  keep() {
    for (const [cachePath, script] of this.fresh) {
      const tmp = `${cachePath}.${process.pid}`;
      try {
        const data = script.createCachedData();
        fs.writeFileSync(tmp, Buffer.concat([this.#digest(data), data]), { mode: 0o600 });
        fs.renameSync(tmp, cachePath);
      } catch {
        fs.rmSync(tmp, { force: true });
      }
    }
  }
}

/**
 * The C library's family, as detect-libc finds it from /usr/bin/ldd, or undefined (not Linux, LIBC already set, no
 * answer there). lmdb finds its prebuilt addon through node-gyp-build, which asks detect-libc unless LIBC says; and
 * detect-libc loads child_process for that, ≈ 4 ms at every start.
 */
function libcFamily() {
  if (process.platform !== 'linux' || process.env.LIBC !== undefined) return undefined;
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
    return ldd.includes('musl') ? 'musl' : ldd.includes('GNU C Library') ? 'glibc' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `viva --version` and `viva -v` (git's short form): the line oclif prints for `--version`, without loading oclif
 * (0.18 s against 0.07 s).
 */
function versionLine() {
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return `viva/${version} ${process.platform}-${process.arch} node-${process.version}\n`;
}

async function main() {
  try {
    const argv = hoistGlobalFlags(process.argv.slice(2));
    const version = argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v');
    const direct = version ? undefined : directCommand(argv);
    if (version) {
      process.stdout.write(versionLine());
    } else if (direct) {
      const cache = new CodeCache();
      // Set only while the command's modules load (lmdb among them), then gone: the processes viva starts never see
      // them. LIBC: see libcFamily. msgpackr's native extractor speeds up decoding long strings in large documents;
      // viva's msgpack values (refs, reflog, meta) are a few hundred bytes, and loading it costs ≈ 1.2 ms a start.
      const hints = { LIBC: libcFamily(), MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' };
      const set = Object.entries(hints).filter(([k, v]) => v !== undefined && process.env[k] === undefined);
      for (const [k, v] of set) process.env[k] = v;
      let command;
      try {
        command = cache.load(direct.file);
      } finally {
        for (const [k] of set) delete process.env[k];
      }
      command.id = direct.id;
      await command.run(direct.argv, { bin: 'viva' });
      cache.keep();
    } else {
      const { run } = await import('@oclif/core');
      await run(argv, { root: ROOT, userPlugins: false });
    }
    // Wait for a slow reader to take all of stdout. (oclif's flush() gives up after 10 s with "timed out", exit 2,
    // which a busy machine or a paging reader reaches with a big `log --json`.)
    if (process.stdout.writableNeedDrain) await new Promise((resolve) => process.stdout.once('drain', resolve));
  } catch (err) {
    const exit = err?.oclif?.exit ?? 70;
    if (exit !== 0) {
      const msg = String(err?.message ?? err).replace(/\x1b\[[0-9;]*m/g, '').split('\n')[0].trim();
      process.stderr.write(`error: ${msg}\nSee 'viva --help'.\n`);
      if (process.env.DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = exit;
  }
}

main();
