/** Tests of derive --batch: spec parsing (templates, values, errors with file:line), generated values, one transaction. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../src/errors.js';
import { deriveBatch, fillTemplate, parseBatchSpec } from '../../src/ops/derive-batch.js';
import { ls, cat } from '../../src/ops/ls.js';
import { showDerivation } from '../../src/ops/derivations.js';
import { branchRefs } from '../../src/ops/derivations.js';
import { AUTHOR, TIME, collect, commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

const hasSshKeygen = fs.existsSync('/usr/bin/ssh-keygen');

test('batch: templates fill {n}, {n:03}, values and escapes; unknown names are refused', (t) => {
  const fail = (why: string): never => { throw new UsageError(why); };
  t.is(fillTemplate('web-{n:03}.{{x}}', { n: 7 }, fail), 'web-007.{x}');
  t.is(fillTemplate('{site}-{i}', { site: 'fra', i: 0 }, fail), 'fra-0');
  t.throws(() => fillTemplate('{nope}', { n: 1 }, fail), { message: /unknown template value '\{nope\}'/ });
});

test('batch: a spec expands counters and zipped value lists', (t) => {
  const v = parseBatchSpec('s.yaml', [
    'base: b',
    'variants:',
    '  - branch: web/{n:02}',
    '    count: 3',
    '    start: 9',
    '    edits:',
    '      - set: "etc/hostname={hostname}\\n"',
    '  - branch: db-{site}',
    '    base: other',
    '    values: { site: [fra, ams], ip: [1.1.1.1, 2.2.2.2] }',
    '    edits: [{ set: "etc/ip={ip}" }, { generate: machine-id }]',
  ].join('\n'));
  t.deepEqual(v.map((x) => [x.branch, x.base, x.hostname, x.where]), [
    ['web/09', 'b', '09', 's.yaml:3'], ['web/10', 'b', '10', 's.yaml:3'], ['web/11', 'b', '11', 's.yaml:3'],
    ['db-fra', 'other', 'db-fra', 's.yaml:8'], ['db-ams', 'other', 'db-ams', 's.yaml:8'],
  ]);
  t.deepEqual(v[1]!.edits[0], { op: 'set', path: 'etc/hostname', data: Buffer.from('10\n') });
  t.deepEqual(v[4]!.edits, [{ op: 'set', path: 'etc/ip', data: Buffer.from('2.2.2.2') }, { op: 'generate', what: 'machine-id' }]);
  // JSON is YAML too.
  t.is(parseBatchSpec('s.json', JSON.stringify({ base: 'b', variants: [{ branch: 'x', edits: [{ rm: 'etc/motd' }] }] }))[0]!.branch, 'x');
});

test('batch: bad specs are one line naming file:line', (t) => {
  const bad = (text: string, re: RegExp) => t.throws(() => parseBatchSpec('f.yaml', text), { instanceOf: UsageError, message: re });
  bad('variants: [\n', /^f\.yaml:\d+: /);
  bad('base: b\nvariant:\n  - branch: x\n', /^f\.yaml:2: unknown key 'variant'/);
  bad('base: b\nvariants:\n  - branch: x\n    edit: []\n', /^f\.yaml:4: unknown key 'edit'/);
  bad('base: b\nvariants:\n  - branch: x\n    edits: [{ frob: a }]\n', /^f\.yaml:4: unknown edit 'frob'/);
  bad('base: b\nvariants:\n  - branch: x\n    edits: [{ chmod: "999:a" }]\n', /^f\.yaml:4: chmod '999:a': mode '999' is not octal/);
  bad('base: b\nvariants:\n  - branch: x\n    edits: [{ generate: keys }]\n', /unknown generator 'keys'/);
  bad('variants:\n  - branch: x\n    edits: [{ rm: a }]\n', /^f\.yaml:2: a variant needs a base/);
  bad('base: b\nvariants:\n  - branch: a\n    edits: [{ rm: a }]\n  - branch: a\n    edits: [{ rm: b }]\n', /^f\.yaml:5: branch 'a' is also made at f\.yaml:3/);
  bad('base: b\nvariants:\n  - branch: w{n}\n    count: 2\n    edits: [{ rm: a }]\n  - branch: w2\n    edits: [{ rm: b }]\n', /^f\.yaml:6: branch 'w2' is also made at f\.yaml:3/);
  bad('base: b\nvariants:\n  - branch: x\n    values: { a: [1, 2], b: [1] }\n    edits: [{ rm: a }]\n', /^f\.yaml:4: values\.b has 1 items, the other lists 2/);
  bad('base: b\nbase: c\nvariants: []\n', /^f\.yaml:\d+: /);
  bad('base: b\nvariants:\n  - branch: "bad name"\n    edits: [{ rm: a }]\n', /^f\.yaml:3: .*bad name/);
  bad('base: b\nvariants:\n  - branch: x\n    hostname: "bad host"\n    edits: [{ generate: hostname }]\n', /^f\.yaml:4: hostname 'bad host' label/);
  bad('base: b\nvariants:\n  - branch: x{n\n    edits: [{ rm: a }]\n', /^f\.yaml:3: a lone '\{'/);
  bad('base: b\nvariants:\n  - branch: x{n:abc}\n    edits: [{ rm: a }]\n', /^f\.yaml:3: '\{n:abc\}' is not a template/);
  bad('base: b\nvariants:\n  - branch: x{n:999}\n    edits: [{ rm: a }]\n', /^f\.yaml:3: /);
  bad('base: b\nvariants:\n  - branch: x\n    partition: root\n    edits: [{ rm: a }]\n', /^f\.yaml:4: partition 'root' is not p1/);
  t.throws(() => parseBatchSpec('/nonexistent/spec.yaml'), { message: /cannot read '\/nonexistent\/spec\.yaml'/ });
  // Numbers are values too; host files are found next to the spec.
  const v = parseBatchSpec('/specs/f.yaml', 'base: b\nvariants:\n  - branch: p{port}\n    values: { port: [80, 443] }\n    edits: [{ set-file: "etc/x=files/x" }]\n');
  t.deepEqual(v.map((x) => x.branch), ['p80', 'p443']);
  t.is((v[0]!.edits[0] as { host: string }).host, '/specs/files/x');
});

test('batch: clones get their own hostname, machine id and valid ssh host keys; a failing variant writes nothing', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, { etc: { hostname: 'base\n', ssh: { sshd_config: 'Port 22\n' } } });
  await commitAt(repo, base, { branch: 'base' });
  const spec = ['base: base', 'variants:', '  - branch: web-{n}', '    count: 3', '    edits:', '      - generate: hostname', '      - generate: machine-id', '      - generate: ssh-host-keys'].join('\n');
  const r = await deriveBatch(repo, { file: 'fleet.yaml', text: spec, author: AUTHOR, time: TIME + 5 });
  t.is(r.variants.length, 3);
  const text = async (s: string) => (await collect(cat(repo, s))).toString();
  t.is(await text('web-2:etc/hostname'), 'web-2\n');
  const ids = await Promise.all([1, 2, 3].map((n) => text(`web-${n}:etc/machine-id`)));
  t.is(new Set(ids).size, 3);
  for (const id of ids) t.regex(id, /^[0-9a-f]{32}\n$/);
  const files = ls(repo, { spec: 'web-1:etc/ssh' }).map((e) => [e.path.split('/').pop(), e.mode]);
  t.deepEqual(files, [['ssh_host_ecdsa_key', '0600'], ['ssh_host_ecdsa_key.pub', '0644'], ['ssh_host_ed25519_key', '0600'], ['ssh_host_ed25519_key.pub', '0644'], ['sshd_config', '0644']]);
  // The record names what was generated by id only: no key material in it.
  const record = JSON.stringify(showDerivation(repo, 'web-1'));
  t.false(record.includes('PRIVATE KEY'));
  t.regex(record, /generated ssh-host-key/);
  if (hasSshKeygen) {
    const tmp = tmpDir(t);
    const key = path.join(tmp, 'k');
    fs.writeFileSync(key, await text('web-3:etc/ssh/ssh_host_ed25519_key'), { mode: 0o600 });
    const pub = execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim();
    t.is(pub, (await text('web-3:etc/ssh/ssh_host_ed25519_key.pub')).trim());
  }
  // One variant whose edit does not apply: no branch of the batch moves.
  const before = branchRefs(repo);
  const broken = ['base: base', 'variants:', '  - branch: ok-{n}', '    count: 2', '    edits: [{ set: "etc/x=1" }]', '  - branch: broken', '    edits: [{ rm: etc/nope }]'].join('\n');
  await t.throwsAsync(deriveBatch(repo, { file: 'b.yaml', text: broken, author: AUTHOR, time: TIME + 6 }), { message: /^b\.yaml:6: broken: edit 1 \(rm etc\/nope\) does not apply/ });
  t.deepEqual(branchRefs(repo), before);
});
