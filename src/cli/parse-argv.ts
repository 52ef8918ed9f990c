/**
 * The command-line parser of viva's commands: oclif's rules (its parser and validator, for the features viva's
 * flags use), without loading oclif (see flags.ts). Long flags `--name VALUE`, `--name=VALUE`, `--no-name` (allowNo);
 * short `-n VALUE`, `-nVALUE`, `-n=VALUE`, grouped booleans `-qf`; `--` ends the flags; a greedy `multiple` flag takes
 * the words after it until the next flag; a word that looks like a flag but is none is an error (not with `--`, or
 * a negative number). Messages are oclif's, so scripts and the help read the same.
 */
import { type Arg, type ArgInput, type Flag, type FlagInput, FlagValueError } from './flags.js';

/** A command line that does not fit the command (exit 2, EXIT.USAGE): its message names the problem as oclif's does. */
export class CommandLineError extends Error {
  /** oclif's marker of its parse errors, which the commands' error handling knows. */
  readonly oclif = { exit: 2 };
}

export interface ParseInput {
  flags: FlagInput;
  args: ArgInput;
  /** false: words beyond the declared args are kept in `argv` instead of refused. */
  strict: boolean;
  /** The command (flag parse functions get it as their context). */
  context?: unknown;
}

export interface ParseOutput {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  flags: Record<string, any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  args: Record<string, any>;
  /** Every argument word in command-line order (with strict false, the words beyond the declared args too; `--` left out). */
  argv: string[];
  /** What set each flag: `setFromDefault` when nobody gave it. */
  metadata: { flags: Record<string, { setFromDefault?: boolean }> };
}

type Token = { type: 'flag'; flag: string; input: string } | { type: 'arg'; arg: string | undefined; input: string };

const NEGATION = '--no-';

/** Parses `argv` against a command's flags and args (the second step of oclif's `this.parse`, validation included). */
export async function parseArgv(argv: string[], input: ParseInput): Promise<ParseOutput> {
  for (const [k, f] of Object.entries(input.flags)) f.name = k;
  for (const [k, a] of Object.entries(input.args)) a.name = k;
  const aliases = new Map<string, Flag<unknown>>();
  for (const f of Object.values(input.flags)) for (const a of f.aliases ?? []) aliases.set(a, f);

  const findLong = (arg: string): string | undefined => {
    const name = arg.slice(2);
    if (input.flags[name]) return name;
    const alias = aliases.get(name);
    if (alias) return alias.name;
    if (arg.startsWith(NEGATION)) {
      const base = arg.slice(NEGATION.length);
      const f = input.flags[base] ?? aliases.get(base);
      if (f && f.type === 'boolean' && f.allowNo) return f.name;
    }
    return undefined;
  };
  const findShort = (arg: string): string | undefined => {
    const c = arg[1];
    if (c === undefined) return undefined;
    return Object.keys(input.flags).find((k) => input.flags[k]!.char === c);
  };
  const find = (arg: string): { isLong: boolean; name: string | undefined } => {
    const isLong = arg.startsWith('--');
    return { isLong, name: isLong ? findLong(arg) : arg.startsWith('-') ? findShort(arg) : undefined };
  };

  const rest = [...argv];
  const raw: Token[] = [];
  let current: Flag<unknown> | undefined;
  const argNames = Object.keys(input.args);
  const argTokens = () => raw.filter((t) => t.type === 'arg').length;

  const parseFlag = (arg: string): boolean => {
    const { isLong, name } = find(arg);
    if (!name) {
      const i = arg.indexOf('=');
      if (i !== -1) {
        rest.unshift(arg.slice(i + 1));
        const ok = parseFlag(arg.slice(0, i));
        if (!ok) rest.shift();
        return ok;
      }
      return false;
    }
    const flag = input.flags[name]!;
    if (flag.type === 'option') {
      if (!flag.multiple && raw.some((t) => t.type === 'flag' && t.flag === name)) throw new CommandLineError(`Flag --${name} can only be specified once`);
      current = flag;
      const value = isLong || arg.length < 3 ? rest.shift() : arg.slice(arg[2] === '=' ? 3 : 2);
      // A value that is itself one of the command's flags means none was given.
      if (typeof value !== 'string' || find(value).name) {
        throw new CommandLineError(flag.options ? `Flag --${name} expects one of these values: ${flag.options.join(', ')}` : `Flag --${name} expects a value`);
      }
      raw.push({ type: 'flag', flag: name, input: value });
    } else {
      raw.push({ type: 'flag', flag: name, input: arg });
      // The other characters of a group of short booleans (-qf) go back on the line.
      if (!isLong && arg.length > 2) rest.unshift(`-${arg.slice(2)}`);
    }
    return true;
  };

  let parsingFlags = true;
  const nonExistent: string[] = [];
  const original = [...argv];
  while (rest.length > 0) {
    const word = rest.shift()!;
    if (parsingFlags && word.startsWith('-') && word !== '-') {
      if (word === '--') {
        parsingFlags = false;
        continue;
      }
      if (parseFlag(word)) continue;
      if (!/^-\d/.test(word)) {
        nonExistent.push(word);
        continue;
      }
    }
    if (parsingFlags && current?.type === 'option' && current.multiple && !current.multipleNonGreedy) {
      raw.push({ type: 'flag', flag: current.name!, input: word });
      continue;
    }
    raw.push({ type: 'arg', arg: argNames[argTokens()], input: word });
  }

  // Arguments: each declared arg takes its word (or its default); the rest stay in argv.
  const args: Record<string, unknown> = {};
  const argvOut: string[] = [];
  const tokens = raw.filter((t): t is Extract<Token, { type: 'arg' }> => t.type === 'arg');
  for (const [name, arg] of Object.entries(input.args) as Array<[string, Arg<unknown>]>) {
    const token = tokens.find((t) => t.arg === name);
    if (token) {
      if (arg.options && !arg.options.includes(token.input)) throw new CommandLineError(`Expected ${token.input} to be one of: ${arg.options.join(', ')}`);
      const parsed = await arg.parse(token.input, input.context, arg);
      argvOut.push(parsed as string);
      args[name] = parsed;
    } else if (arg.default !== undefined) {
      argvOut.push(arg.default);
      args[name] = arg.default;
    }
  }
  for (const t of tokens) if (t.arg === undefined || args[t.arg] === undefined) argvOut.push(t.input);

  // Flags: the values given (the last for a single-valued flag), else the default.
  const given = new Map<string, string[]>();
  for (const t of raw) if (t.type === 'flag') given.set(t.flag, [...(given.get(t.flag) ?? []), t.input]);
  const flags: Record<string, unknown> = {};
  const metadata: ParseOutput['metadata'] = { flags: {} };
  const parseValue = async (flag: Flag<unknown>, value: string | boolean): Promise<unknown> => {
    try {
      return flag.type === 'boolean' ? await flag.parse(value as boolean, input.context, flag) : await flag.parse(value as string, input.context, flag);
    } catch (e) {
      if (e instanceof FlagValueError) throw new CommandLineError(`Parsing --${flag.name} \n\t${e.message}`);
      throw e;
    }
  };
  const checkOption = (flag: Flag<unknown>, value: string) => {
    if (flag.type === 'option' && flag.options && !flag.options.includes(value)) throw new CommandLineError(`Expected --${flag.name}=${value} to be one of: ${flag.options.join(', ')}`);
    return value;
  };
  for (const [name, flag] of Object.entries(input.flags)) {
    const inputs = given.get(name);
    if (inputs?.length) {
      if (flag.type === 'boolean') {
        const last = inputs[inputs.length - 1]!;
        const negated = [name, ...(flag.aliases ?? [])].some((n) => last === `${NEGATION}${n}`);
        flags[name] = await parseValue(flag, !negated);
      } else if (flag.multiple) {
        flags[name] = await Promise.all(inputs.map((v) => parseValue(flag, checkOption(flag, v))));
      } else {
        flags[name] = await parseValue(flag, checkOption(flag, inputs[inputs.length - 1]!));
      }
    } else if (flag.default !== undefined) {
      flags[name] = flag.default;
      metadata.flags[name] = { setFromDefault: true };
    }
  }

  // Validation, in oclif's order: unknown flags, extra words, missing args, then each flag's rules.
  if (nonExistent.length) throw new CommandLineError(`Nonexistent flag${nonExistent.length === 1 ? '' : 's'}: ${nonExistent.join(', ')}`);
  const finalArgv = [...argvOut, ...nonExistent].sort((a, b) => original.indexOf(a) - original.indexOf(b));
  if (input.strict && finalArgv.length > argNames.length) {
    const extras = finalArgv.slice(argNames.length);
    throw new CommandLineError(`Unexpected argument${extras.length === 1 ? '' : 's'}: ${extras.join(', ')}`);
  }
  const missing = (Object.entries(input.args) as Array<[string, Arg<unknown>]>).filter(([name, a]) => a.required && args[name] === undefined);
  if (missing.length) {
    const list = missing.map(([name, a]) => `${name}  ${a.options ? `(${a.options.join('|')}) ` : ''}${a.description ?? ''}`.trimEnd());
    throw new CommandLineError(`Missing ${missing.length} required arg${missing.length === 1 ? '' : 's'}:\n${list.join('\n')}`);
  }
  const reasons: string[] = [];
  for (const [name, flag] of Object.entries(input.flags)) {
    if (flags[name] === undefined) {
      if (flag.required) reasons.push(`Missing required flag ${name}`);
      continue;
    }
    const fromDefault = (n: string) => metadata.flags[n]?.setFromDefault === true;
    if (flag.dependsOn) {
      const absent = flag.dependsOn.filter((d) => flags[d] === undefined);
      if (absent.length) reasons.push(`All of the following must be provided when using --${name}: ${flag.dependsOn.map((d) => `--${d}`).join(', ')}`);
    }
    if (flag.exclusive && !fromDefault(name)) {
      const other = flag.exclusive.find((x) => flags[x] !== undefined && !fromDefault(x));
      if (other !== undefined) reasons.push(`--${other}=${String(flags[other])} cannot also be provided when using --${name}`);
    }
  }
  if (reasons.length) {
    const unique = [...new Set(reasons)];
    throw new CommandLineError(`The following error${unique.length === 1 ? '' : 's'} occurred:\n  ${unique.join('\n  ')}`);
  }
  return { flags, args, argv: finalArgv, metadata };
}
