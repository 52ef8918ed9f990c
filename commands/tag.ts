import { RefCommand, refArgs, refCommandDescription, refFlags } from '../src/cli/ref-command.js';
import { type RefInfo } from '../src/ops/branch.js';

export default class Tag extends RefCommand {
  static override summary = 'list, create, delete or rename tags (named, fixed image versions)';
  static override description = refCommandDescription("tag");
  static override examples = [
    '<%= config.bin %> tag',
    '<%= config.bin %> tag v1.0 debian/12/base',
    '<%= config.bin %> tag --list "v1.*"',
    '<%= config.bin %> tag -d v1.0',
  ];
  static override args = refArgs;
  static override flags = refFlags;
  protected kind = "tag" as const;

  async run(): Promise<RefInfo[]> {
    const { args, flags } = await this.parse(Tag);
    return this.runRef(args, flags);
  }
}
