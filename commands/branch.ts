import { RefCommand, refArgs, refCommandDescription, refFlags } from '../src/cli/ref-command.js';
import type { RefInfo } from '../src/index.js';

export default class Branch extends RefCommand {
  static override summary = 'list, create, delete or rename image branches';
  static override description = refCommandDescription('branch');
  static override examples = [
    '<%= config.bin %> branch',
    '<%= config.bin %> branch --list debian/',
    '<%= config.bin %> branch customers/acme/web debian/12/base',
    '<%= config.bin %> branch -m customers/acme/web customers/acme/www',
    '<%= config.bin %> branch -d customers/acme/www',
  ];
  static override args = refArgs;
  static override flags = refFlags;
  protected kind = 'branch' as const;

  async run(): Promise<RefInfo[]> {
    const { args, flags } = await this.parse(Branch);
    return this.runRef(args, flags);
  }
}
