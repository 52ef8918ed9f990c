import { Flags } from '../src/cli/flags.js';
import { serve } from '../src/sync/server.js';
import { webHandler } from '../src/web/handler.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, openRepository } from '../src/cli/repo-command.js';

export default class Serve extends RepoCommand {
  static override summary = 'serve a repository over HTTP(S) for clone, fetch, pull, push and ls-remote, with a web view';
  static override description = `The web view: open http://HOST:PORT/ in a browser to browse the images (branches, history, files, comparisons, search and find, derivations, storage); every page is also JSON under /api/ (docs/web.md). With --token-file the web view needs the token too (a login page stores it in a cookie); without one it is open, as clone and fetch are.

A repository in a bucket (--storage s3://…, or -C s3://…) is served through this host's cache, and its refs and index are re-read at most once a second, so several servers of one bucket, each with its own cache, can stand behind one load balancer: a push to one is seen by the others.

Read-only unless --allow-push, which needs --token-file: clients send the token (VIVA_TOKEN, or the --token-file of 'remote add'/'clone'/'push') and it is compared in constant time. Request bodies are size-limited, every pushed object is verified against its id before it is stored, and one line per request is logged on standard error. Runs until interrupted. The protocol is in docs/protocol.md.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> serve --repo /srv/images --listen 127.0.0.1:8080',
    '<%= config.bin %> serve --storage s3://images/fleet --listen 0.0.0.0:8080',
    '<%= config.bin %> serve --repo /srv/images --listen 0.0.0.0:8443 --allow-push --token-file /etc/viva/token --tls-cert cert.pem --tls-key key.pem',
  ];
  static override flags = {
    listen: Flags.string({ summary: 'HOST:PORT to listen on', default: '127.0.0.1:8080' }),
    storage: Flags.string({ summary: 'serve the repository in this bucket (s3://BUCKET/PREFIX; same as -C URL)', helpValue: 'URL', exclusive: ['repo'] }),
    'token-file': Flags.string({ summary: 'file whose first line is the push token' }),
    'allow-push': Flags.boolean({ summary: 'accept pushes (with the token)' }),
    'tls-cert': Flags.string({ summary: 'TLS certificate (PEM); serves https', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'TLS private key (PEM)', dependsOn: ['tls-cert'] }),
    'max-push-bytes': Flags.integer({ summary: 'largest push accepted, in bytes', default: 64 * 1024 ** 3 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const repo = await openRepository(flags.storage ?? flags.repo, flags['allow-push'] ? 'write' : 'read');
    try {
      const server = await serve(repo, {
        listen: flags.listen, handler: webHandler(repo), allowPush: flags['allow-push'], maxPushBytes: flags['max-push-bytes'],
        ...(flags['token-file'] ? { tokenFile: flags['token-file'] } : {}),
        ...(flags['tls-cert'] && flags['tls-key'] ? { tls: { cert: flags['tls-cert'], key: flags['tls-key'] } } : {}),
      });
      process.stderr.write(`serving ${repo.inBucket ? repo.location : repo.root} at ${server.url}${flags['allow-push'] ? ' (push allowed with the token)' : ' (read-only)'}\nweb view: open ${server.url} in a browser\n`);
      await new Promise<void>((resolve) => {
        const stop = () => { void server.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    } finally {
      await repo.close();
    }
  }
}
