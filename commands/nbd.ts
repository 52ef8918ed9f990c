import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_NBD_LISTEN, serveNbd } from '../src/nbd/server.js';
import { parseSize } from '../src/cli/argv.js';
import { dropNbdSession, listNbdSessions, type NbdSessionEntry } from '../src/ops/nbd-sessions.js';
import { namesDirectoryCommit } from '../src/ops/tree-disk.js';
import { renderNbdSessions } from '../src/cli/render.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, openRepository } from '../src/cli/repo-command.js';
import { Repository } from '../src/store/repository.js';

export default class Nbd extends RepoCommand {
  static override summary = 'serve disk commits as block devices over NBD (read-only, or writable into a session)';
  static override description = `Each REV is a disk commit (a raw or qcow2 image given to 'viva commit', or a disk made by 'viva derive' from one), exported under its revision text (--name NAME renames a single one); the first is also the default export (empty name). NBD clients (qemu-img, qemu-io, qemu-nbd and qemu-system-* among them) read exactly the bytes 'viva checkout REV disk.raw' writes, composed on demand from the repository: nothing is materialized, every chunk read is verified against its id, and zero ranges are reported as holes (structured replies, base:allocation block status). Without --writable the export is read-only: writes, trims and write-zeroes fail with EPERM.

--writable (one REV): writes, write-zeroes and trims go to the copy-on-write overlay of a session kept in the repository's data directory (.viva/nbd/SESSION/), never into its objects; --name names the session (and the export; default: a generated name, printed on standard error at start) and reopens an existing one at its last flushed state. A flush (NBD_CMD_FLUSH, a write with FUA, the client's disconnect, the server's clean exit) makes the writes durable; writes not flushed when the server dies are lost, as a disk's write cache. One server per session: a second one is refused (exit 11). 'viva commit nbd:SESSION -b BR -m MSG' records base + overlay as a new disk commit, reading only the files whose blocks changed; 'viva nbd --list' shows the sessions (--json), 'viva nbd --drop SESSION' removes one that no server holds.

A directory or tar commit has no disk: the first time it is served, a disk is built from its tree as 'viva checkout REV disk.raw --size N' builds one (GPT, one ext4 partition at 1 MiB; --size N, default: the files plus a fifth and 64 MiB), read back into the repository — only the file system's metadata is new, file contents are the commit's own blobs — and kept for the next server of that tree (gc drops it with the tree). Disk commits (raw, qcow2, ... images, and disks made by 'viva derive') are served as they are, bit for bit.

Prints one nbd:// URI per export on standard output when ready (nbd+unix:// with --socket), one line per connection on standard error, and runs until interrupted (SIGINT, SIGTERM). Listening on an address other than loopback prints a warning: NBD has no authentication.

The first blocks clients read from each disk (a boot's reads, up to 32 MiB) are kept, when the server stops, as the disk's read profile in the repository's data directory (.viva/nbd-profiles/); the next server of that disk decodes them ahead while its client starts.

In a partial clone ('viva clone --filter manifests') the blocks a client reads are fetched from the remote the clone came from — whole chunks, with read-ahead — and kept, so the next read needs no network. 'viva run REV' boots a disk commit in qemu through this server.

--tls-cert and --tls-key make the server require TLS: a client must send NBD_OPT_STARTTLS before anything else (others get NBD_REP_ERR_TLS_REQD), and the URIs printed are nbds://. qemu's clients take the CA certificate with '--object tls-creds-x509,id=tls0,endpoint=client,dir=DIR' and 'tls-creds=tls0'. TLS encrypts; NBD still does not authenticate clients.

The protocol subset and the overlay format are in docs/nbd.md.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> nbd vm/web',
    '<%= config.bin %> nbd vm/web vm/db --listen 127.0.0.1:10810',
    '<%= config.bin %> nbd vm/web --socket /run/viva-web.sock --name web',
    '<%= config.bin %> nbd debian/12/rootfs --size 4G',
    'qemu-img convert -f raw -O qcow2 nbd://127.0.0.1:10809/vm/web web.qcow2',
    'qemu-system-x86_64 -m 1G -drive file=nbd://127.0.0.1:10809/vm/web,format=raw,readonly=on',
    '<%= config.bin %> nbd vm/web --listen 0.0.0.0:10809 --tls-cert server-cert.pem --tls-key server-key.pem',
    '<%= config.bin %> nbd vm/web --writable --name web-test',
    '<%= config.bin %> commit nbd:web-test -b vm/web -m "after the test run"',
    '<%= config.bin %> nbd --list',
    '<%= config.bin %> nbd --drop web-test',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    rev: Args.string({ required: false, description: 'disk commit to serve (repeat for more exports)' }),
  };
  static override flags = {
    ...RepoCommand.baseFlags,
    listen: Flags.string({ summary: `HOST:PORT to listen on (port 0: a free one)`, default: DEFAULT_NBD_LISTEN, exclusive: ['socket'] }),
    socket: Flags.string({ summary: 'listen on this Unix socket instead of TCP' }),
    name: Flags.string({ summary: 'export name of the revision (one REV only; default: the REV as given); with --writable also the session name' }),
    size: Flags.string({ summary: 'size of the disk built for a directory commit (4G, 512M, bytes; default: the files plus a fifth and 64 MiB)' }),
    writable: Flags.boolean({ summary: 'serve one REV writable, writes going to a session overlay (see DESCRIPTION)' }),
    list: Flags.boolean({ summary: 'list the writable sessions (name, base, bytes changed, created, live) and exit', exclusive: ['drop', 'writable'] }),
    drop: Flags.string({ summary: 'remove session SESSION and its overlay (refused while a server holds it)', helpValue: 'SESSION', exclusive: ['list', 'writable'] }),
    'tls-cert': Flags.string({ summary: 'require TLS (NBD_OPT_STARTTLS) with this certificate (PEM); URIs become nbds://', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'the private key (PEM) of --tls-cert', dependsOn: ['tls-cert'] }),
    'handshake-timeout': Flags.integer({ summary: 'seconds a client may take to finish the handshake', default: DEFAULT_HANDSHAKE_TIMEOUT, min: 1 }),
  };

  async run(): Promise<NbdSessionEntry[] | { dropped: string; changedBytes: number } | void> {
    const { argv, flags } = await this.parse(Nbd);
    if (flags.list || flags.drop !== undefined) {
      if (argv.length) throw new UsageError(`--${flags.list ? 'list' : 'drop'} takes no revision`);
      if (flags.list) {
        const sessions = await this.withRepo('read', flags.repo, async (repo) => listNbdSessions(repo));
        const text = renderNbdSessions(sessions);
        if (text) this.log(text);
        return sessions;
      }
      const r = await this.withRepo('read', flags.repo, async (repo) => dropNbdSession(repo, flags.drop!));
      this.log(`dropped nbd session '${r.name}'`);
      return { dropped: r.name, changedBytes: r.changedBytes };
    }
    if (!argv.length) throw new UsageError('name a revision to serve (or --list, --drop SESSION)');
    // Signals are caught from the start: an interrupt while the server starts still ends it cleanly.
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => { stop = resolve; });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A partial clone fetches the blocks clients read (opened for writing), and so may building a directory
    // commit's disk: open it for writing then.
    let repo = await openRepository(flags.repo, 'read');
    if (repo.mode === 'read' && namesDirectoryCommit(repo, argv as string[])) {
      await repo.close();
      repo = Repository.open(flags.repo, 'write');
    }
    try {
      const server = await serveNbd(repo, {
        revs: argv as string[],
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.socket !== undefined ? { socket: flags.socket } : { listen: flags.listen }),
        handshakeTimeout: flags['handshake-timeout'],
        ...(flags['tls-cert'] && flags['tls-key'] ? { tls: { cert: flags['tls-cert'], key: flags['tls-key'] } } : {}),
        ...(flags.size !== undefined ? { size: parseSize(flags.size) } : {}),
        onBuild: (rev, phase) => {
          if (phase === 'start') process.stderr.write(`'${rev}' is a directory commit: finding or building its disk...\n`);
          else if (phase === 'built') process.stderr.write(`built a disk for '${rev}' (kept for the next server of its tree)\n`);
        },
        ...(flags.writable ? { writable: flags.name !== undefined ? { session: flags.name } : {} } : {}),
      });
      if (server.session) {
        process.stderr.write(`nbd session '${server.session.name}' ${server.session.created ? 'created' : 'reopened'}: commit it with 'viva commit nbd:${server.session.name} -b BRANCH -m MESSAGE'\n`);
      }
      for (const w of server.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const uri of server.uris) this.log(uri);
      await stopped;
      await server.close();
    } finally {
      await repo.close();
    }
  }
}
