/**
 * The NBD wire format (the `NetworkBlockDevice/nbd` repository's doc/proto.md): magic numbers, option, reply,
 * command and error codes, and the encoders of the messages a server sends. All integers are big-endian. Values are
 * the protocol's and frozen.
 */

/** "NBDMAGIC": the first 8 bytes a server sends. */
export const NBDMAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": newstyle negotiation; also the magic of every option a client sends. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Magic of an option reply. */
export const OPT_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

/** Options. */
export const OPT = {
  EXPORT_NAME: 1, ABORT: 2, LIST: 3, PEEK_EXPORT: 4, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9, SET_META_CONTEXT: 10, EXTENDED_HEADERS: 11,
} as const;

/** Option reply types; errors have bit 31 set. */
export const REP = {
  ACK: 1, SERVER: 2, INFO: 3, META_CONTEXT: 4,
  ERR_UNSUP: 2 ** 31 + 1, ERR_POLICY: 2 ** 31 + 2, ERR_INVALID: 2 ** 31 + 3, ERR_PLATFORM: 2 ** 31 + 4,
  ERR_TLS_REQD: 2 ** 31 + 5, ERR_UNKNOWN: 2 ** 31 + 6, ERR_SHUTDOWN: 2 ** 31 + 7, ERR_BLOCK_SIZE_REQD: 2 ** 31 + 8,
  ERR_TOO_BIG: 2 ** 31 + 9,
} as const;

/** NBD_REP_INFO items. */
export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags. */
export const TFLAG = {
  HAS_FLAGS: 1 << 0, READ_ONLY: 1 << 1, SEND_FLUSH: 1 << 2, SEND_FUA: 1 << 3, ROTATIONAL: 1 << 4, SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6, SEND_DF: 1 << 7, CAN_MULTI_CONN: 1 << 8, SEND_RESIZE: 1 << 9, SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

/** Commands and command flags. */
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7, RESIZE: 8 } as const;
export const CMD_FLAG = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

/** Structured reply chunk types and flags. */
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: 2 ** 15 + 1, ERROR_OFFSET: 2 ** 15 + 2 } as const;

/** base:allocation block status flags. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;

/** Error values (as errno on Linux). */
export const NBD_ERR = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;

/** The meta context this server offers, and the id it gets. */
export const BASE_ALLOCATION = 'base:allocation';
export const BASE_ALLOCATION_ID = 1;

/** Length of a request header. */
export const REQUEST_BYTES = 28;

/** The server's first message: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(flags: number): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(flags, 16);
  return b;
}

/** An option reply: magic, option, reply type, length, data. */
export function encodeOptReply(option: number, type: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  b.set(data, 20);
  return b;
}

/** A simple reply header (a read's data follows it). */
export function encodeSimpleReply(error: number, cookie: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8);
  return b;
}

/** A structured reply chunk header for a payload of `length` bytes. */
export function encodeChunkHeader(flags: number, type: number, cookie: Buffer, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** A structured NBD_REPLY_TYPE_ERROR chunk (always the last one: DONE). */
export function encodeErrorChunk(cookie: Buffer, error: number, message: string): Buffer {
  const msg = Buffer.from(message.slice(0, 1024));
  const payload = Buffer.alloc(6 + msg.length);
  payload.writeUInt32BE(error, 0);
  payload.writeUInt16BE(msg.length, 4);
  msg.copy(payload, 6);
  return Buffer.concat([encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.ERROR, cookie, payload.length), payload]);
}
