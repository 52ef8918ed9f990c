/** Tests of the CLI's human renderers. */
import test from 'ava';
import { MAX_LISTED_WARNINGS, modeString, renderWarnings } from '../../src/cli/render.js';

test('render: few checkout warnings are listed one by one', (t) => {
  const w = [{ path: '/d/a', message: 'cannot set owner 0:0 (EPERM)' }];
  t.deepEqual(renderWarnings(w), ['/d/a: cannot set owner 0:0 (EPERM)']);
});

test('render: many checkout warnings are grouped by kind with a count and examples', (t) => {
  const w = Array.from({ length: MAX_LISTED_WARNINGS + 5 }, (_, i) => ({ path: `/d/f${i}`, message: `cannot set owner ${i}:${i} (EPERM)` }));
  w.push({ path: '/d/chr', message: 'cannot create character device 1:3 (EPERM)' });
  w.push({ path: '/d/x', message: "cannot set xattr 'trusted.viva' (EPERM)" });
  t.deepEqual(renderWarnings(w), [
    'cannot set owner: 15 entries (/d/f0, /d/f1, /d/f2, …)',
    'cannot create character device: 1 entry (/d/chr)',
    'cannot set xattr: 1 entry (/d/x)',
  ]);
});

test('render: modeString shows type, setuid, setgid and sticky like ls -l', (t) => {
  t.is(modeString('file', '4755'), '-rwsr-xr-x');
  t.is(modeString('dir', '1777'), 'drwxrwxrwt');
  t.is(modeString('file', '2644'), '-rw-r-Sr--');
  t.is(modeString('chr', '0600'), 'crw-------');
});
