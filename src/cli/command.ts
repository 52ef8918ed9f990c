/**
 * The base class of viva's commands, in place of oclif's `Command`: the same static shape (oclif still writes the
 * manifest, the help and the completion from it, and can run a command through `Command.run(argv, config)`), the
 * same run protocol (run, catch, finally, --json output) and oclif's parsing rules (parse-argv.ts), without loading
 * oclif, which took most of a read command's start-up. bin/run.js runs a command straight from its module.
 */
import { format, inspect } from 'node:util';
import { type ArgInput, type FlagInput, type InferredArgs, type InferredFlags, JSON_FLAG } from './flags.js';
import { type ParseOutput, parseArgv } from './parse-argv.js';

/** What a command uses of oclif's Config (bin/run.js gives these; oclif's own Config has them too). */
export interface CommandConfig {
  /** The program's name in messages ('viva'). */
  bin: string;
  version?: string;
}

/** What a command's `parse` reads: its flags, base flags, args, strictness and --json. */
export interface ParseOptions<F extends FlagInput, B extends FlagInput, A extends ArgInput> {
  flags?: F;
  baseFlags?: B;
  args?: A;
  strict?: boolean;
  enableJsonFlag?: boolean;
}

/** The parsed command line: flags (with `json` when the command has --json) and args, typed from their definitions. */
export interface Parsed<F, B, A> extends Omit<ParseOutput, 'flags' | 'args'> {
  flags: InferredFlags<F> & InferredFlags<B> & { json: boolean | undefined };
  args: InferredArgs<A>;
}

/** Exits the command with a status, as oclif's `this.exit` (an error carrying `oclif.exit`). */
export class CommandExit extends Error {
  readonly oclif: { exit: number };
  constructor(code: number) {
    super(`EEXIT: ${code}`);
    this.oclif = { exit: code };
  }
}

export abstract class Command {
  static id?: string;
  static summary?: string;
  static description?: string;
  static examples?: string[];
  static usage?: string | string[];
  static hidden?: boolean;
  static aliases: string[] = [];
  static flags: FlagInput = {};
  static baseFlags: FlagInput = {};
  static args: ArgInput = {};
  static strict = true;
  static enableJsonFlag = false;

  /** The command's id ('log', 'remote:add'). */
  id: string | undefined;

  constructor(public argv: string[], public config: CommandConfig) {
    this.id = (this.constructor as typeof Command).id;
  }

  /** Runs the command class on argv, as oclif's static `Command.run` (which oclif's `runCommand` calls). */
  static async run<T extends Command>(this: new (argv: string[], config: CommandConfig) => T, argv: string[] = process.argv.slice(2), config?: CommandConfig): Promise<unknown> {
    const cmd = new this(argv, config ?? { bin: 'viva' });
    return cmd._run();
  }

  /** run(), then catch() on a failure and finally() in any case; a result is printed as JSON with --json. */
  async _run(): Promise<unknown> {
    let err: Error | undefined;
    let result: unknown;
    try {
      result = await this.run();
    } catch (e) {
      err = e as Error;
      await this.catch(err);
    } finally {
      await this.finally(err);
    }
    if (result && this.jsonEnabled()) this.logJson(result);
    return result;
  }

  abstract run(): Promise<unknown>;

  /** A failure of run(): rethrown (the caller prints it). */
  protected async catch(err: Error): Promise<unknown> {
    throw err;
  }

  protected async finally(_err: Error | undefined): Promise<unknown> {
    return undefined;
  }

  /** --json was given (before any `--`) to a command that has it. */
  jsonEnabled(): boolean {
    if (!(this.constructor as typeof Command).enableJsonFlag) return false;
    const dd = this.argv.indexOf('--');
    const json = this.argv.indexOf('--json');
    return json !== -1 && (dd === -1 || json < dd);
  }

  /** A line on stdout (printf-style arguments, as console.log), not with --json. */
  log(message: unknown = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return;
    process.stdout.write(`${format(typeof message === 'string' ? message : inspect(message), ...args)}\n`);
  }

  /** A line on stderr, not with --json. */
  logToStderr(message: unknown = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return;
    process.stderr.write(`${format(typeof message === 'string' ? message : inspect(message), ...args)}\n`);
  }

  /** The --json document on stdout. */
  logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }

  /** Ends the command with this exit status. */
  exit(code = 0): never {
    throw new CommandExit(code);
  }

  /** Parses the command line against the command's definitions (oclif's `this.parse`). */
  protected async parse<F extends FlagInput, B extends FlagInput, A extends ArgInput>(options?: ParseOptions<F, B, A>, argv: string[] = this.argv): Promise<Parsed<F, B, A>> {
    const o = (options ?? this.constructor) as ParseOptions<F, B, A>;
    const flags: FlagInput = { ...(o.enableJsonFlag ? { json: JSON_FLAG } : {}), ...o.baseFlags, ...o.flags };
    const out = await parseArgv(argv, { flags, args: o.args ?? {}, strict: o.strict !== false, context: this });
    return out as unknown as Parsed<F, B, A>;
  }
}
