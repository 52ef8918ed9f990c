/** Every error class: its instance name and code match the class (catches copy-paste slips), codes are unique. */
import test from 'ava';
import { ERROR_CLASSES, VivaError } from '../src/errors.js';

type AnyErrorClass = (new (...args: unknown[]) => VivaError) & { code: string; name: string };

test('errors: every class has name = class name and code = its static code, unique across classes', (t) => {
  const codes = new Set<string>();
  for (const C of ERROR_CLASSES as unknown as AnyErrorClass[]) {
    const e = new C('a', ['b'], 'c');
    t.true(e instanceof VivaError, C.name);
    t.true(e instanceof Error, C.name);
    t.is(e.name, C.name);
    t.is(e.code, C.code, C.name);
    t.regex(C.code, /^ERR_[A-Z_]+$/, C.name);
    t.false(codes.has(C.code), `duplicate code ${C.code}`);
    codes.add(C.code);
    const json = e.toJSON();
    t.is(json.code, C.code);
    t.is(json.name, C.name);
    t.is(json.message, e.message);
  }
  t.is(codes.size, ERROR_CLASSES.length);
});

test('errors: messages start lowercase (or with a quoted subject) and have no full stop', (t) => {
  for (const C of ERROR_CLASSES as unknown as AnyErrorClass[]) {
    if (C === (VivaError as unknown)) continue;
    const { message } = new C('x', ['y'], 'z');
    t.notRegex(message, /\.$/, C.name);
    t.notRegex(message, /^[A-Z]/, C.name);
  }
});
