/** The one place that turns errors of the AWS SDK into viva errors: every S3 failure is a `RemoteError` (exit 17). */
import { RemoteError } from '../../errors.js';

/** Where a failed S3 request went: the repository URL (without secrets), the endpoint, the bucket and the key. */
export interface S3ErrorContext { url: string; endpoint: string; bucket: string; key?: string }

/** The fields of an SDK (or Node socket) error that the mapping looks at. */
interface SdkErrorLike {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
}

const CREDENTIAL_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken',
  'ExpiredToken', 'TokenRefreshRequired', 'AllAccessDisabled', 'AccountProblem', 'Forbidden']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EADDRNOTAVAIL']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

/** The HTTP status of an SDK error, if the server answered at all. */
export function s3Status(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`NoSuchKey`, `PreconditionFailed`, …) or, for a socket error, the errno code (`ECONNREFUSED`). */
export function s3ErrorName(err: unknown): string {
  const e = (err ?? {}) as SdkErrorLike;
  return socketCode(e) ?? e.Code ?? (e.name && e.name !== 'Error' ? e.name : undefined) ?? e.code ?? 'Error';
}

/** True when the request may not have reached the server or its answer was lost: no HTTP status, a timeout, a socket error. */
export function isNetworkError(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorLike;
  if (socketCode(e) || TIMEOUT_NAMES.has(e.name ?? '')) return true;
  return s3Status(err) === undefined && !isCredentialError(err) && e.name !== 'CredentialsProviderError';
}

/**
 * True for the answers after which a conditional PUT may or may not have been applied: 409
 * ConditionalRequestConflict, 500 (RGW's answer to most losers of a race), 503, and network errors.
 */
export function isUnknownOutcome(err: unknown): boolean {
  const status = s3Status(err);
  return status === 409 || status === 500 || status === 503 || (status === undefined && isNetworkError(err));
}

/** True when the server (or the SDK's credential chain) refused the credentials. */
export function isCredentialError(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorLike;
  return CREDENTIAL_ERRORS.has(e.Code ?? e.name ?? '') || s3Status(err) === 403 || e.name === 'CredentialsProviderError';
}

/**
 * The viva error for a failed S3 request: always a `RemoteError` (exit 17) whose one-line message starts with the
 * repository URL. Refused credentials → "access denied: …", a missing bucket → "no such bucket 'B'", no connection
 * after the retries → "cannot reach ENDPOINT: ECONNREFUSED", anything else names the S3 error and HTTP status.
 * An error that is already a viva error is returned as it is.
 *
 * @example
 * try { await client.send(cmd) } catch (e) { throw toVivaError(e, { url, endpoint, bucket, key }) }
 */
export function toVivaError(err: unknown, ctx: S3ErrorContext): Error {
  if (err instanceof RemoteError) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const name = s3ErrorName(err);
  const status = s3Status(err);
  if (e.name === 'CredentialsProviderError') {
    return new RemoteError(ctx.url, 'access denied: no credentials found (CredentialsProviderError); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE', status);
  }
  if (isCredentialError(err)) {
    return new RemoteError(ctx.url, `access denied: the credentials were refused (${name}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`, status);
  }
  if (name === 'NoSuchBucket') return new RemoteError(ctx.url, `no such bucket '${ctx.bucket}'`, status);
  if (status === undefined && isNetworkError(err)) return new RemoteError(ctx.url, `cannot reach ${ctx.endpoint}: ${name}`);
  const what = ctx.key === undefined ? 'request' : `request for '${ctx.key}'`;
  return new RemoteError(ctx.url, `${what} failed: ${name}${status === undefined ? '' : ` (HTTP ${status})`}`, status);
}

function socketCode(e: SdkErrorLike): string | undefined {
  if (e.code && SOCKET_CODES.has(e.code)) return e.code;
  for (const inner of e.errors ?? []) {
    const c = (inner as SdkErrorLike | undefined)?.code;
    if (c && SOCKET_CODES.has(c)) return c;
  }
  return undefined;
}
