import { Args, Flags } from '../src/cli/flags.js';
import { DEFAULT_RUN_MEMORY, runVm } from '../src/nbd/run.js';
import { parseSize } from '../src/cli/argv.js';
import { namesDirectoryCommit } from '../src/ops/tree-disk.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderRunSummary } from '../src/cli/render.js';

export default class Run extends RepoCommand {
  static override summary = 'boot a disk commit in qemu, served over NBD straight from the repository';
  static override description = `Starts an NBD server for REV (a disk commit, as 'viva nbd' serves) on a Unix socket in a temporary directory and 'qemu-system-x86_64' on it: the disk is virtio, KVM is used when /dev/kvm can be opened (TCG otherwise), and the serial console and qemu monitor are on this terminal (Ctrl-A X quits, Ctrl-A C switches to the monitor). Nothing is materialized: the guest's reads are composed from the repository on demand. Arguments after '--' go to qemu after viva's own (a later -m, -accel or -serial wins), e.g. '-kernel', '-append', '-no-reboot', '-nic user'. VIVA_QEMU names another emulator binary.

Without --writable the guest may write, but its writes go to a temporary overlay qemu drops when it exits (the repository never changes). With --writable they go to a writable NBD session (as 'viva nbd --writable' keeps: an overlay in the repository's data directory, never its objects), named by --name (default: generated; an existing session is reopened and the guest sees its earlier writes). When qemu exits, the session is flushed and the one command that records the changes as a new disk commit is printed ('viva commit nbd:SESSION -b BRANCH -m MESSAGE', the branch REV named filled in); 'viva nbd --drop SESSION' discards them instead.

In a partial clone ('viva clone --filter manifests'), the blocks the guest reads are fetched from the remote the clone came from — whole chunks, with read-ahead — and kept, so the next boot reads no network. A summary line on standard error when qemu exits gives the bytes read and fetched.

A directory or tar commit boots from the disk 'viva nbd' builds for it once (GPT, one ext4 partition; --size, default: the files plus a fifth and 64 MiB), kept for the next run: it holds no boot loader, so give qemu a kernel ('-kernel', '-initrd', '-append "root=/dev/vda1 console=ttyS0"').

The exit status is qemu's (128 + N when qemu was killed by signal N); 2 when qemu cannot be started.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> run vm/web',
    '<%= config.bin %> run vm/web --memory 2G --cpus 2',
    '<%= config.bin %> run vm/web -- -nic user,hostfwd=tcp::2222-:22',
    '<%= config.bin %> run vm/web --writable --name web-upgrade',
    '<%= config.bin %> run vm/web -- -no-reboot -kernel vmlinuz -append "console=ttyS0 root=/dev/vda1"',
  ];
  static override enableJsonFlag = false;
  static override strict = false;
  static override args = {
    rev: Args.string({ required: true, description: 'disk commit to boot' }),
  };
  static override flags = {
    ...RepoCommand.baseFlags,
    memory: Flags.string({ char: 'm', summary: 'guest memory (qemu -m syntax: 512M, 2G)', default: DEFAULT_RUN_MEMORY }),
    cpus: Flags.integer({ summary: 'virtual CPUs (qemu -smp)', min: 1 }),
    size: Flags.string({ summary: 'size of the disk built for a directory commit (4G, 512M, bytes)' }),
    writable: Flags.boolean({ summary: 'keep the guest\'s writes in a writable NBD session, to commit afterwards' }),
    name: Flags.string({ summary: 'the writable session\'s name (default: generated; an existing one is reopened)', dependsOn: ['writable'] }),
    accel: Flags.string({ summary: 'accelerator (default: kvm when /dev/kvm is usable, else tcg)', options: ['kvm', 'tcg'] }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Run);
    const qemuArgs = (argv as string[]).slice(1);
    // qemu owns the console: an interrupt typed there is the guest's (qemu puts the terminal in raw mode); a
    // signal sent to viva is passed on, and viva waits for qemu to go.
    let child: import('node:child_process').ChildProcess | undefined;
    const forward = (sig: NodeJS.Signals) => () => { child?.kill(sig); };
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    process.on('SIGHUP', forward('SIGHUP'));
    // A directory commit's disk may have to be built, which writes.
    const mode = await this.withRepo('read', flags.repo, (repo) => (namesDirectoryCommit(repo, [args.rev]) ? 'write' : 'read'));
    const r = await this.withRepo(mode, flags.repo, (repo) => runVm(repo, {
      rev: args.rev,
      memory: flags.memory,
      ...(flags.cpus !== undefined ? { cpus: flags.cpus } : {}),
      ...(flags.accel !== undefined ? { accel: flags.accel as 'kvm' | 'tcg' } : {}),
      qemuArgs,
      ...(flags.size !== undefined ? { size: parseSize(flags.size) } : {}),
      onBuild: (rev, phase) => {
        if (phase === 'start') process.stderr.write(`'${rev}' is a directory commit: finding or building its disk...\n`);
        else if (phase === 'built') process.stderr.write(`built a disk for '${rev}' (kept for the next run)\n`);
      },
      ...(flags.writable ? { writable: flags.name !== undefined ? { session: flags.name } : {} } : {}),
      onSession: (s) => {
        if (s) process.stderr.write(`nbd session '${s.name}' ${s.created ? 'created' : 'reopened'}: the guest's writes go there\n`);
      },
      onSpawn: (c) => { child = c; },
    }));
    process.stderr.write(`${renderRunSummary(r, flags.repo)}\n`);
    process.exitCode = r.exitCode;
  }
}
