/** Quoting of image path names for human output (git core.quotePath style) and its inverse for path arguments. */
import test from 'ava';
import crypto from 'node:crypto';
import { hexIfNotUtf8, quotePath, quoteResultPath, unquotePath } from '../../src/model/quote.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('quotePath: plain names, spaces and valid non-ASCII UTF-8 are printed as they are', (t) => {
  t.is(quotePath('etc/ssh/sshd_config'), 'etc/ssh/sshd_config');
  t.is(quotePath('with space'), 'with space');
  t.is(quotePath('café/日本語/😀'), 'café/日本語/😀');
  t.is(quotePath(''), '');
});

test('quotePath: control characters, quotes, backslashes and invalid UTF-8 are C-quoted with octal escapes', (t) => {
  t.is(quotePath(b('new\nline')), '"new\\nline"');
  t.is(quotePath(b('a\tb\r\x07\x08\x0b\x0c')), '"a\\tb\\r\\a\\b\\v\\f"');
  t.is(quotePath(b('x\x01\x7f')), '"x\\001\\177"');
  t.is(quotePath(b('quo"te')), '"quo\\"te"');
  t.is(quotePath(b('back\\slash')), '"back\\\\slash"');
  t.is(quotePath(b('non-utf8-\xff\xfe')), '"non-utf8-\\377\\376"');
  // Valid UTF-8 stays raw inside quotes; an overlong form, a surrogate and a lone continuation byte do not.
  t.is(quotePath(Buffer.concat([Buffer.from('café\n'), b('\xc0\xaf\xed\xa0\x80\x80')])), '"café\\n\\300\\257\\355\\240\\200\\200"');
  t.is(quotePath(b('"start')), '"\\"start"');
});

test('unquotePath: reads back every quoted form; an unquoted argument is taken as UTF-8', (t) => {
  t.deepEqual(unquotePath('"non-utf8-\\377\\376"'), { bytes: b('non-utf8-\xff\xfe') });
  t.deepEqual(unquotePath('"new\\nline"'), { bytes: b('new\nline') });
  t.deepEqual(unquotePath('"\\1\\12x\\0"'), { bytes: b('\x01\x0ax\x00') });
  t.deepEqual(unquotePath('"café"'), { bytes: Buffer.from('café') });
  t.deepEqual(unquotePath('plain/path'), { bytes: Buffer.from('plain/path') });
  for (const [s, why] of [['"open', /no closing/], ['"a"b', /after the closing/], ['"\\q"', /unknown escape/], ['"\\777"', /above 255/], ['"x\\', /backslash at the end|no closing/]] as const) {
    const r = unquotePath(s);
    t.true('error' in r, s);
    if ('error' in r) t.regex(r.error, why, s);
  }
});

test('quotePath/unquotePath: every byte string survives the round trip, and an unquoted output never starts with a quote', (t) => {
  for (let i = 0; i < 2000; i++) {
    const raw = crypto.randomBytes(1 + (i % 24));
    const q = quotePath(raw);
    if (!q.startsWith('"')) t.deepEqual(Buffer.from(q, 'utf8'), raw);
    const back = unquotePath(q);
    t.true('bytes' in back && back.bytes.equals(raw), raw.toString('hex'));
    t.false(q.includes('\n'));
  }
});

test('quoteResultPath/hexIfNotUtf8: results carry pathHex only for names that are not UTF-8', (t) => {
  t.is(hexIfNotUtf8(Buffer.from('café')), undefined);
  t.is(hexIfNotUtf8(b('x\xff')), '78ff');
  t.is(quoteResultPath('x\ufffd', '78ff'), '"x\\377"');
  t.is(quoteResultPath('new\nline'), '"new\\nline"');
});

test('quoteResultPath: a UTF-8 name prints exactly as quotePath prints its bytes, whether or not it needs quoting', (t) => {
  const names = ['usr/bin/ls', 'café/naïve', 'etc/日本語', 'emoji 😀', 'a"b', 'a\\b', 'tab\there', 'del\x7f', 'nul\0', 'bell\x07', 'esc\x1b[0m', '', ' lead and trail ', 'x\u0080y', '\u2028sep'];
  for (const n of names) t.is(quoteResultPath(n), quotePath(Buffer.from(n, 'utf8')), JSON.stringify(n));
});
