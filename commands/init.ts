import { Args, Flags } from '../src/cli/flags.js';
import { init, type InitResult } from '../src/ops/init.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Init extends RepoCommand {
  static override summary = 'create an empty image repository, in a directory or in an S3 bucket';
  static override description = `Creates DIR/.viva (an LMDB environment holding objects, refs, reflogs and indexes). HEAD starts on the unborn branch 'main'.

With --storage s3://BUCKET/PREFIX the repository is created in the bucket instead: packs, index segments and refs live there, and any host that opens the same URL (viva -C URL …, or VIVA_REPO=URL) sees the same repository. The bucket must exist and the prefix must hold no repository. Credentials come from the usual AWS variables, files and profiles (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, AWS_PROFILE), never from the URL, and are never stored. --endpoint and --region (or AWS_ENDPOINT_URL_S3, AWS_REGION) are kept in the URL. Each host keeps a cache of what it read; with DIR, DIR/.viva is that cache and DIR is bound to the bucket, so commands run in DIR use it; without DIR the cache is in $VIVA_CACHE_DIR, $XDG_CACHE_HOME/viva or ~/.cache/viva. See docs/s3.md.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> init /srv/images',
    '<%= config.bin %> init .',
    '<%= config.bin %> init --storage s3://images/fleet --endpoint http://127.0.0.1:7480 /srv/images',
    '<%= config.bin %> init --storage s3://images/fleet',
  ];
  static override args = { dir: Args.string({ description: 'directory to create the repository in (default: the current directory; with --storage: the directory bound to the bucket, optional)' }) };
  static override flags = {
    'initial-branch': Flags.string({ char: 'b', summary: 'name of the first branch', default: 'main' }),
    storage: Flags.string({ summary: 'create the repository in this bucket: s3://BUCKET/PREFIX', helpValue: 'URL' }),
    endpoint: Flags.string({ summary: 'S3 endpoint URL, e.g. http://127.0.0.1:7480 (default: AWS_ENDPOINT_URL_S3, or AWS)', helpValue: 'URL', dependsOn: ['storage'] }),
    region: Flags.string({ summary: 'S3 region (default: AWS_REGION, or us-east-1)', dependsOn: ['storage'] }),
  };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    const r = await init(args.dir ?? (flags.storage ? undefined : '.'), {
      defaultBranch: flags['initial-branch'], storage: flags.storage, endpoint: flags.endpoint, region: flags.region,
    });
    this.log(r.storage ? `Initialized empty viva repository in ${r.storage} (cache in ${r.dataDir})` : `Initialized empty viva repository in ${r.dataDir}`);
    return r;
  }
}
