/**
 * Flag and argument definitions of viva's commands, in oclif's shapes (oclif writes the manifest and the help from
 * them) but without loading oclif: `@oclif/core` takes about 45 ms to import and 20 ms to configure, more than a
 * read command does its work in. src/cli/parse-argv.ts parses a command line against them with oclif's rules.
 */

/** A parse failure of a flag's value: the parser names the flag ("Parsing --max-count: Expected an integer ..."). */
export class FlagValueError extends Error {}

interface CommonProps {
  char?: string;
  summary?: string;
  description?: string;
  helpGroup?: string;
  hidden?: boolean;
  required?: boolean;
  /** Flags that may not be given with this one. */
  exclusive?: string[];
  /** Flags that must be given with this one. */
  dependsOn?: string[];
  /** Other long names of the flag. */
  aliases?: string[];
  /** Set by the parser: the flag's key. */
  name?: string;
}

/** A flag without a value (`--all`); `allowNo` also accepts `--no-NAME` (false). */
export interface BooleanFlag<T> extends CommonProps {
  type: 'boolean';
  allowNo: boolean;
  default?: boolean;
  parse: (input: boolean, context: unknown, options: unknown) => Promise<T>;
}

/** A flag with a value (`--message TEXT`, `-m TEXT`, `--message=TEXT`); `multiple`: repeatable, values in order. */
export interface OptionFlag<T> extends CommonProps {
  type: 'option';
  helpValue?: string;
  multiple?: boolean;
  /** With `multiple`: each occurrence takes one value (otherwise following non-flag words are taken too, as oclif does). */
  multipleNonGreedy?: boolean;
  options?: readonly string[];
  default?: T;
  min?: number;
  max?: number;
  input: string[];
  parse: (input: string, context: unknown, options: { min?: number; max?: number }) => Promise<unknown>;
}

export type Flag<T> = BooleanFlag<T> | OptionFlag<T>;

/** A positional argument. */
export interface Arg<T> {
  type: 'option';
  description?: string;
  required?: boolean;
  default?: string;
  options?: readonly string[];
  name?: string;
  input: string[];
  parse: (input: string, context: unknown, options: unknown) => Promise<T>;
}

type OptionProps<T> = Omit<CommonProps, 'name'> & {
  helpValue?: string;
  multiple?: boolean;
  multipleNonGreedy?: boolean;
  options?: readonly string[];
  default?: T | T[];
};

type IntegerProps = OptionProps<number> & { min?: number; max?: number };

const identity = async (input: string) => input;

function optionFlag<T>(props: object, parse: (input: string, context: unknown, options: { min?: number; max?: number }) => Promise<unknown>): OptionFlag<T> {
  const p = props as { multiple?: boolean };
  return { parse, ...props, input: [], multiple: Boolean(p.multiple), type: 'option' } as OptionFlag<T>;
}

async function parseInteger(input: string, _context: unknown, options: { min?: number; max?: number }): Promise<number> {
  if (!/^-?\d+$/.test(input)) throw new FlagValueError(`Expected an integer but received: ${input}`);
  const num = Number.parseInt(input, 10);
  if (options.min !== undefined && num < options.min) throw new FlagValueError(`Expected an integer greater than or equal to ${options.min} but received: ${input}`);
  if (options.max !== undefined && num > options.max) throw new FlagValueError(`Expected an integer less than or equal to ${options.max} but received: ${input}`);
  return num;
}

function stringFlag(props: OptionProps<string> & { multiple: true } & ({ required: true } | { default: string[] })): OptionFlag<string[]>;
function stringFlag(props: OptionProps<string> & { multiple: true }): OptionFlag<string[] | undefined>;
function stringFlag(props: OptionProps<string> & ({ required: true } | { default: string })): OptionFlag<string>;
function stringFlag(props?: OptionProps<string>): OptionFlag<string | undefined>;
function stringFlag(props: OptionProps<string> = {}): OptionFlag<unknown> {
  return optionFlag(props, identity);
}

function integerFlag(props: IntegerProps & ({ required: true } | { default: number })): OptionFlag<number>;
function integerFlag(props?: IntegerProps): OptionFlag<number | undefined>;
function integerFlag(props: IntegerProps = {}): OptionFlag<unknown> {
  return optionFlag(props, parseInteger);
}

/** The flag builders, as oclif's `Flags` (the subset viva uses). */
export const Flags = {
  boolean<T = boolean>(props: Omit<CommonProps, 'name'> & { allowNo?: boolean; default?: boolean } = {}): BooleanFlag<T> {
    return { parse: async (b: boolean) => b as T, ...props, allowNo: Boolean(props.allowNo), type: 'boolean' };
  },
  string: stringFlag,
  integer: integerFlag,
  /** A flag whose value is one of `options` (its type is their union). */
  option<const O extends readonly string[]>(props: OptionProps<O[number]> & { options: O }): () => OptionFlag<O[number] | undefined> {
    return () => optionFlag<O[number] | undefined>(props, identity);
  },
};

function stringArg(props: { description?: string; required: true; options?: readonly string[] }): Arg<string>;
function stringArg(props: { description?: string; default: string; options?: readonly string[] }): Arg<string>;
function stringArg(props?: { description?: string; required?: boolean; default?: string; options?: readonly string[] }): Arg<string | undefined>;
function stringArg(props: { description?: string; required?: boolean; default?: string; options?: readonly string[] } = {}): Arg<unknown> {
  return { parse: identity, ...props, input: [], type: 'option' };
}

/** The argument builders, as oclif's `Args`. */
export const Args = { string: stringArg };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FlagInput = Record<string, Flag<any>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ArgInput = Record<string, Arg<any>>;

/** The parsed values of a set of flags: a boolean is `boolean`; an optional flag without a default may be undefined. */
export type InferredFlags<F> = { [K in keyof F]: F[K] extends Flag<infer T> ? T : never };
export type InferredArgs<A> = { [K in keyof A]: A[K] extends Arg<infer T> ? T : never };

/** `--json`, which oclif adds to commands with `enableJsonFlag` (the same definition, for the same help). */
export const JSON_FLAG = Flags.boolean({ description: 'Format output as json.', helpGroup: 'GLOBAL' });
