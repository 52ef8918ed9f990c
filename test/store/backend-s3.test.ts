/**
 * The Backend conformance suite on S3 (the Ceph radosgw of `.ci/ceph up`), plus the S3-only parts: URL parsing, the
 * error mapping (no such bucket, unreachable endpoint) and the SigV4 payload hash.
 */
import test, { type Implementation } from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { RemoteError, UsageError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { S3Backend, parseS3Url } from '../../src/store/remote/s3-backend.js';
import { toVivaError } from '../../src/store/remote/s3-errors.js';
import { S3_CREDENTIALS, S3_ENDPOINT, filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';
import { backendSuite, collect } from './backend.suite.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
let n = 0;

backendSuite({
  name: 's3',
  skip,
  make: async () => {
    const b = s3Backend(`${root}${n++}/`);
    return { it: b, close: () => b.close() };
  },
  wrongCredentials: async () => {
    const b = s3Backend(`${root}wrong/`, { credentials: { ...S3_CREDENTIALS, secretAccessKey: 'wrong' } });
    return { it: b, close: () => b.close() };
  },
});

// The same suite with GET and LIST through the SDK only (the light path off): both paths answer alike.
backendSuite({
  name: 's3 (sdk only)',
  skip,
  make: async () => {
    const b = s3Backend(`${root}sdk${n++}/`, { light: false });
    return { it: b, close: () => b.close() };
  },
});

if (!skip) test.after.always(() => removePrefix(root));

const s3 = skip ? (name: string) => test.skip(`s3: ${name} (${skip})`, () => {}) : (name: string, f: Implementation<[]>) => test(`s3: ${name}`, f);

s3('a missing bucket is a RemoteError naming it, exit 17', async (t) => {
  const b = new S3Backend(parseS3Url('s3://viva-no-such-bucket/x/', { endpoint: S3_ENDPOINT }), { credentials: S3_CREDENTIALS });
  for (const call of [() => b.get('k'), () => b.head('k'), () => b.put('k', Buffer.from('x')), () => collect(b, '')]) {
    const e = await t.throwsAsync(call, { instanceOf: RemoteError });
    t.is(e?.message, `${b.url}: no such bucket 'viva-no-such-bucket'`);
    t.is(exitCodeFor(e?.code), 17);
  }
  await b.close();
});

s3('signed requests carry the payload\'s real sha256 in x-amz-content-sha256 (not UNSIGNED-PAYLOAD)', async (t) => {
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ region: 'us-east-1', endpoint: S3_ENDPOINT, forcePathStyle: true, credentials: S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const seen: string[] = [];
  client.middlewareStack.add((next) => async (args) => {
    seen.push(String((args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256']));
    return next(args);
  }, { step: 'finalizeRequest', priority: 'low' });
  const body = crypto.randomBytes(1234);
  await client.send(new PutObjectCommand({ Bucket: 'viva-ci', Key: `${root}sha`, Body: body }));
  t.deepEqual(seen, [crypto.createHash('sha256').update(body).digest('hex')]);
  client.destroy();
});

s3('objects above 16 MiB go up as a multipart upload (ETag "…-N"), smaller ones in one PUT', async (t) => {
  const b = s3Backend(`${root}multipart/`);
  const big = await b.put('big', crypto.randomBytes((16 << 20) + 1));
  t.regex(big.ok ? big.etag : '', /^[0-9a-f]{32}-3$/);
  const small = await b.put('small', crypto.randomBytes(16 << 20));
  t.regex(small.ok ? small.etag : '', /^[0-9a-f]{32}$/);
  await b.close();
});

test('s3: an unreachable endpoint is a RemoteError "cannot reach", exit 17', async (t) => {
  const b = new S3Backend(parseS3Url('s3://viva-ci/x/', { endpoint: 'http://127.0.0.1:1' }), { credentials: S3_CREDENTIALS, maxAttempts: 2 });
  for (const call of [() => b.get('k'), () => b.put('k', Buffer.from('x'))]) {
    const e = await t.throwsAsync(call, { instanceOf: RemoteError });
    t.is(e?.message, `${b.url}: cannot reach http://127.0.0.1:1: ECONNREFUSED`);
    t.is(exitCodeFor(e?.code), 17);
  }
  t.deepEqual(await b.put('k', Buffer.from('x'), { ifNoneMatch: '*' }), { ok: false, why: 'unknown' }, 'a conditional PUT cannot know');
  await b.close();
});

test('s3: the SDK is loaded on the first request, not when the module is imported or the backend made', (t) => {
  // A resolve hook refuses every @aws-sdk import: making the backend must work, its first request must hit the hook.
  const hook = 'export async function resolve(s, c, next) { if (s.startsWith("@aws-sdk/")) throw new Error("SDK loaded: " + s); return next(s, c); }';
  const script = `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const { S3Backend, parseS3Url } = await import('./src/store/remote/s3-backend.ts');
    await import('./src/store/remote/s3-errors.ts');
    const b = new S3Backend(parseS3Url('s3://viva-ci/p/', { endpoint: 'http://127.0.0.1:1' }));
    console.log('made');
    try { await b.head('k'); console.log('no hook'); } catch (e) { console.log(e.message); }
    await b.close();`;
  const out = execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(out, 'made\nSDK loaded: @aws-sdk/client-s3\n');
});

test('s3: parseS3Url: bucket, prefix, canonical URL, precedence of flags over query over environment', (t) => {
  const env = {};
  t.deepEqual(parseS3Url('s3://viva-ci/images/base', { env }), { bucket: 'viva-ci', prefix: 'images/base/', endpoint: undefined, region: 'us-east-1', url: 's3://viva-ci/images/base/' });
  t.deepEqual(parseS3Url('s3://viva-ci', { env }).prefix, '');
  t.is(parseS3Url('s3://viva-ci/', { env }).url, 's3://viva-ci/');
  const withEndpoint = parseS3Url('s3://viva-ci/p/', { endpoint: 'http://127.0.0.1:7480/', env });
  t.is(withEndpoint.url, 's3://viva-ci/p/?endpoint=http%3A%2F%2F127.0.0.1%3A7480&region=us-east-1');
  t.deepEqual(parseS3Url(withEndpoint.url, { env }), withEndpoint, 'the canonical URL parses to itself');
  t.is(parseS3Url(withEndpoint.url, { endpoint: 'https://s3.example.org', region: 'eu-west-1', env }).endpoint, 'https://s3.example.org');
  t.is(parseS3Url('s3://viva-ci/p?region=eu-west-1', { env: { AWS_REGION: 'us-west-2' } }).region, 'eu-west-1');
  t.is(parseS3Url('s3://viva-ci/p', { env: { AWS_REGION: 'us-west-2' } }).region, 'us-west-2');
  t.is(parseS3Url('s3://viva-ci/p', { env: { AWS_ENDPOINT_URL_S3: 'http://a:1', AWS_ENDPOINT_URL: 'http://b:2' } }).endpoint, 'http://a:1');
  t.is(parseS3Url('s3://viva-ci/p', { env: { AWS_ENDPOINT_URL: 'http://b:2' } }).endpoint, 'http://b:2');
});

test('s3: parseS3Url refuses credentials in the URL and malformed URLs with a UsageError', (t) => {
  for (const bad of ['s3://AKIA:secret@viva-ci/p', 's3://key@viva-ci/p', 'https://viva-ci/p', 's3://', 's3://Bad_Bucket/p',
    's3://viva-ci/a//b', 's3://viva-ci/a/../b', 's3://viva-ci/p?foo=1']) {
    const e = t.throws(() => parseS3Url(bad, { env: {} }), { instanceOf: UsageError }, bad);
    t.is(exitCodeFor(e?.code), 2);
    t.false(e?.message.includes('secret'), 'the secret is not repeated');
  }
  t.throws(() => parseS3Url('s3://viva-ci/p', { endpoint: 'http://u:pw@host', env: {} }), { instanceOf: UsageError });
  t.throws(() => parseS3Url('s3://viva-ci/p', { endpoint: 'ftp://host', env: {} }), { instanceOf: UsageError });
});

test('s3: the error mapping names the S3 error and the key for anything else', (t) => {
  const ctx = { url: 's3://b/p/', endpoint: 'http://e', bucket: 'b', key: 'refs/x' };
  const sdk = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  t.is(toVivaError(sdk('InternalError', 500), ctx).message, "s3://b/p/: request for 'refs/x' failed: InternalError (HTTP 500)");
  t.is(toVivaError(sdk('SignatureDoesNotMatch', 403), ctx).message,
    's3://b/p/: access denied: the credentials were refused (SignatureDoesNotMatch); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE');
  t.regex(toVivaError(Object.assign(new Error('x'), { name: 'CredentialsProviderError' }), ctx).message, /^s3:\/\/b\/p\/: access denied: no credentials found/);
  t.is(toVivaError(Object.assign(new Error('x'), { code: 'ECONNRESET' }), ctx).message, 's3://b/p/: cannot reach http://e: ECONNRESET');
  for (const e of [sdk('InternalError', 500), sdk('NoSuchBucket', 404)]) t.is(exitCodeFor((toVivaError(e, ctx) as RemoteError).code), 17);
});

s3('the light path answers GET and LIST without loading the SDK; anything else is the SDK\'s', async (t) => {
  const hook = 'export async function resolve(s, c, next) { if (s.startsWith("@aws-sdk/")) throw new Error("SDK loaded: " + s); return next(s, c); }';
  const script = `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const { S3Backend, parseS3Url } = await import('./src/store/remote/s3-backend.ts');
    const b = new S3Backend(parseS3Url('s3://viva-ci/${root}light/', { endpoint: ${JSON.stringify(S3_ENDPOINT)} }), { credentials: ${JSON.stringify(S3_CREDENTIALS)} });
    const got = await b.get('nothing-here');
    const listed = [];
    for await (const o of b.list('')) listed.push(o.key);
    console.log(String(got), listed.length);
    try { await b.head('k'); } catch (e) { console.log(e.message); }
    await b.close();`;
  const out = execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(out, 'undefined 0\nSDK loaded: @aws-sdk/client-s3\n');
});
