/**
 * The S3 server of the tests: a Ceph radosgw started by `.ci/ceph up DIR` (endpoint in VIVA_TEST_S3, its directory in
 * VIVA_TEST_CEPH_DIR). Without VIVA_TEST_S3 the S3 tests are registered as skipped, with the reason in their title;
 * with VIVA_REQUIRE_S3=1 (CI) a missing endpoint is a failing test instead.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { S3Backend, parseS3Url, type S3BackendOptions } from '../../src/store/remote/s3-backend.js';

/** The endpoint of the test server, e.g. `http://127.0.0.1:7480`; undefined when no server was given. */
export const S3_ENDPOINT = process.env.VIVA_TEST_S3 || undefined;
/** The directory `.ci/ceph up` used (for tests that start or kill a second gateway); undefined when not given. */
export const CEPH_DIR = process.env.VIVA_TEST_CEPH_DIR || undefined;
/** The bucket every S3 test works in (created by `.ci/ceph up`); each test file takes its own random prefix in it. */
export const S3_BUCKET = 'viva-ci';
/** The keys of the `ci` user that `.ci/ceph up` creates. */
export const S3_CREDENTIALS = { accessKeyId: 'viva-ci', secretAccessKey: 'viva-ci-secret' } as const;
/** The reason S3 tests are skipped, shown in every skipped test's title. */
export const S3_SKIP_REASON = 'set VIVA_TEST_S3, see .ci/ceph';

let announced = false;

/**
 * Undefined when the S3 tests can run, else the reason to skip them. When VIVA_REQUIRE_S3=1 and there is no
 * endpoint, registers (once per file) a test that fails, so a CI run without its server cannot pass.
 */
export function s3Skip(): string | undefined {
  if (S3_ENDPOINT) return undefined;
  if (!announced) {
    announced = true;
    if (process.env.VIVA_REQUIRE_S3 === '1') {
      test('S3 test server is configured', (t) => t.fail(`VIVA_REQUIRE_S3=1 but VIVA_TEST_S3 is not set (${S3_SKIP_REASON})`));
    } else {
      console.log(`S3 tests skipped: ${S3_SKIP_REASON}`);
    }
  }
  return S3_SKIP_REASON;
}

/** A fresh random key prefix for one test file: `<file name>-<8 hex>/`. */
export function filePrefix(file: string): string {
  return `${path.basename(file).replace(/\.test\.ts$/, '')}-${crypto.randomBytes(4).toString('hex')}/`;
}

/** The `s3://viva-ci/PREFIX?endpoint=…` URL of a prefix on the test server. */
export function s3Url(prefix: string): string {
  return parseS3Url(`s3://${S3_BUCKET}/${prefix}`, { endpoint: S3_ENDPOINT ?? 'http://127.0.0.1:7480' }).url;
}

/** An `S3Backend` on PREFIX of the test bucket, with the test keys unless `options.credentials` says otherwise. */
export function s3Backend(prefix: string, options: S3BackendOptions = {}): S3Backend {
  const loc = parseS3Url(`s3://${S3_BUCKET}/${prefix}`, { endpoint: S3_ENDPOINT ?? 'http://127.0.0.1:7480', region: 'us-east-1' });
  return new S3Backend(loc, { credentials: S3_CREDENTIALS, ...options });
}

/** The environment for a child process (a `viva` run) that should reach the test server with the test keys. */
export function s3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...(S3_ENDPOINT ? { AWS_ENDPOINT_URL_S3: S3_ENDPOINT } : {}),
  };
}

/** Deletes every object below `prefix` (a test file's cleanup). */
export async function removePrefix(prefix: string): Promise<void> {
  const b = s3Backend(prefix);
  const keys: string[] = [];
  for await (const o of b.list('')) keys.push(o.key);
  await b.delete(keys);
  await b.close();
}

/** The endpoint of the second gateway `.ci/ceph up` configures (client.rgw.b), which tests start and kill. */
export const RGW_B_ENDPOINT = 'http://127.0.0.1:7481';

/**
 * Starts the second gateway (client.rgw.b) of the test cluster and resolves when it answers. Needs CEPH_DIR (the
 * directory `.ci/ceph up` used).
 */
export async function startRgwB(): Promise<void> {
  if (!CEPH_DIR) throw new Error('VIVA_TEST_CEPH_DIR is not set');
  execFileSync('radosgw', ['-n', 'client.rgw.b'], { env: { ...process.env, CEPH_CONF: path.join(CEPH_DIR, 'ceph.conf') }, stdio: 'ignore' });
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`${RGW_B_ENDPOINT}/`);
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error('client.rgw.b does not answer on 127.0.0.1:7481');
}

/** Kills the second gateway with SIGKILL (by its pid file) and waits until it is gone. */
export async function killRgwB(): Promise<void> {
  if (!CEPH_DIR) throw new Error('VIVA_TEST_CEPH_DIR is not set');
  const pidFile = path.join(CEPH_DIR, 'run', 'client.rgw.b.pid');
  let pid: number;
  try { pid = Number(fs.readFileSync(pidFile, 'utf8').trim()); } catch { return; }
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  for (let i = 0; i < 100; i++) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(st)) break;
    } catch {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  fs.rmSync(pidFile, { force: true });
}
