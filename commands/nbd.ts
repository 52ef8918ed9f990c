import { Args, Flags } from '@oclif/core';
import { DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_NBD_LISTEN, serveNbd } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { Repository } from '../src/store/repository.js';

export default class Nbd extends RepoCommand {
  static override summary = 'serve disk commits as read-only block devices over NBD';
  static override description = `Each REV is a disk commit (a raw or qcow2 image given to 'viva commit', or a disk made by 'viva derive' from one), exported under its revision text (--name NAME renames a single one); the first is also the default export (empty name). NBD clients (qemu-img, qemu-io, qemu-nbd and qemu-system-* among them) read exactly the bytes 'viva checkout REV disk.raw' writes, composed on demand from the repository: nothing is materialized, every chunk read is verified against its id, and zero ranges are reported as holes (structured replies, base:allocation block status). The export is read-only: writes, trims and write-zeroes fail with EPERM.

A directory or tar commit has no disk: it is refused (exit 2); build one first with 'viva checkout REV disk.img --size N' and commit that image.

Prints one nbd:// URI per export on standard output when ready (nbd+unix:// with --socket), one line per connection on standard error, and runs until interrupted (SIGINT, SIGTERM). Listening on an address other than loopback prints a warning: NBD has no authentication.

In a partial clone ('viva clone --filter manifests') the blocks a client reads are fetched from the remote the clone came from — whole chunks, with read-ahead — and kept, so the next read needs no network. 'viva run REV' boots a disk commit in qemu through this server.

Not yet: --writable sessions and committing them, TLS. The protocol subset is in docs/nbd.md.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> nbd vm/web',
    '<%= config.bin %> nbd vm/web vm/db --listen 127.0.0.1:10810',
    '<%= config.bin %> nbd vm/web --socket /run/viva-web.sock --name web',
    'qemu-img convert -f raw -O qcow2 nbd://127.0.0.1:10809/vm/web web.qcow2',
    'qemu-system-x86_64 -m 1G -drive file=nbd://127.0.0.1:10809/vm/web,format=raw,readonly=on',
  ];
  static override enableJsonFlag = false;
  static override strict = false;
  static override args = {
    rev: Args.string({ required: true, description: 'disk commit to serve (repeat for more exports)' }),
  };
  static override flags = {
    ...RepoCommand.baseFlags,
    listen: Flags.string({ summary: `HOST:PORT to listen on (port 0: a free one)`, default: DEFAULT_NBD_LISTEN, exclusive: ['socket'] }),
    socket: Flags.string({ summary: 'listen on this Unix socket instead of TCP' }),
    name: Flags.string({ summary: 'export name of the revision (one REV only; default: the REV as given)' }),
    'handshake-timeout': Flags.integer({ summary: 'seconds a client may take to finish the handshake', default: DEFAULT_HANDSHAKE_TIMEOUT, min: 1 }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Nbd);
    // Signals are caught from the start: an interrupt while the server starts still ends it cleanly.
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => { stop = resolve; });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let repo = Repository.open(flags.repo, 'read');
    // A partial clone fetches the blocks clients read, which writes: open it for writing.
    if (repo.store.meta.get('partial')) {
      await repo.close();
      repo = Repository.open(flags.repo, 'write');
    }
    try {
      const server = await serveNbd(repo, {
        revs: argv as string[],
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.socket !== undefined ? { socket: flags.socket } : { listen: flags.listen }),
        handshakeTimeout: flags['handshake-timeout'],
      });
      for (const w of server.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const uri of server.uris) this.log(uri);
      await stopped;
      await server.close();
    } finally {
      await repo.close();
    }
  }
}
