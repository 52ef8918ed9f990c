/**
 * Builds an XFS file system from a tree: `mkfs.xfs` on the scratch image, a loop mount of it, the tree written into
 * the mount by checkout's ordinary directory writer (through the kernel: owners, all 12 mode bits, ns mtimes, every
 * xattr namespace with POSIX ACLs and security.selinux, hardlinks, device nodes, fifos, sockets, symbolic links,
 * holes, any name bytes), then unmounted.
 *
 * Why a loop mount and not `mkfs.xfs -p protofile` plus `xfs_db` fix-ups: xfsprogs 6.1's protofile has no xattrs, no
 * times, no hardlinks, no sockets and no names with spaces, and `xfs_db attr_set` cannot write an xattr's value
 * bytes, so that route cannot be lossless; the kernel's XFS driver is the reference writer, and what it writes passes
 * `xfs_repair -n` by construction. The cost: root and a loop device (`mount -o loop`), checked before any work.
 */
import fs from 'node:fs';
import { CheckoutError } from '../errors.js';
import { runTool } from './fs-tools.js';

/** The XFS superblock magic, 'XFSB' at byte 0 of the file system. */
export const XFS_MAGIC = 'XFSB';
/** mkfs.xfs (xfsprogs ≥ 5.19) refuses smaller file systems outside its own test suite. */
export const XFS_MIN_BYTES = 300 * (1 << 20);

/**
 * Device numbers XFS can store (exclusive bounds): Linux's XFS refuses a device node whose major is 512 or more or
 * whose minor is 2^18 or more (fs/xfs/xfs_iops.c: `!sysv_valid_dev(rdev) || MAJOR(rdev) & ~0x1ff` → EINVAL).
 */
export const XFS_MAX_MAJOR = 512;
/** See XFS_MAX_MAJOR. */
export const XFS_MAX_MINOR = 1 << 18;

/** mkfs.xfs parameters a rebuild takes from a committed XFS file system's superblock, or a new disk's. */
export interface XfsParams {
  label?: string;
  /** 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'. */
  uuid?: string;
  blockSize?: number;
  sectorSize?: number;
  inodeSize?: number;
  agCount?: number;
}

/**
 * The parameters of the XFS superblock `sb` (its first 512 bytes; big-endian, see xfs_format.h `struct xfs_dsb`):
 * block size (byte 4), uuid (32), AG count (88), sector size (102), inode size (104), label (108, 12 bytes).
 * Undefined when `sb` does not start with 'XFSB'.
 */
export function xfsParamsOf(sb: Buffer): XfsParams | undefined {
  if (sb.length < 120 || sb.toString('latin1', 0, 4) !== XFS_MAGIC) return undefined;
  const hex = sb.subarray(32, 48).toString('hex');
  const label = sb.subarray(108, 120).toString('latin1').replace(/\0.*$/s, '');
  return {
    blockSize: sb.readUInt32BE(4),
    uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    agCount: sb.readUInt32BE(88),
    sectorSize: sb.readUInt16BE(102),
    inodeSize: sb.readUInt16BE(104),
    ...(label ? { label } : {}),
  };
}

/** mkfs.xfs arguments (before the image name) for `params`. */
export function mkfsXfsArgs(params: XfsParams): string[] {
  const args: string[] = [];
  if (params.blockSize) args.push('-b', `size=${params.blockSize}`);
  if (params.sectorSize) args.push('-s', `size=${params.sectorSize}`);
  if (params.inodeSize) args.push('-i', `size=${params.inodeSize}`);
  if (params.agCount) args.push('-d', `agcount=${params.agCount}`);
  if (params.uuid) args.push('-m', `uuid=${params.uuid}`);
  if (params.label) args.push('-L', params.label);
  return args;
}

/**
 * Throws CheckoutError(dest) unless this process can loop-mount: it must be root (a loop mount and the owners,
 * devices and trusted.* xattrs of the tree need it) and the loop driver must be there (/dev/loop-control).
 */
export function assertCanLoopMount(dest: string): void {
  if (process.getuid?.() !== 0) {
    throw new CheckoutError(dest, 'an xfs file system is filled through a loop mount, which needs root (run as root, or use --fs ext4)');
  }
  if (!fs.existsSync('/dev/loop-control')) {
    throw new CheckoutError(dest, 'an xfs file system is filled through a loop mount, and this system has no loop devices (/dev/loop-control; modprobe loop)');
  }
}

/**
 * Mounts the XFS image `image` on the empty directory `mnt` (loop, nosuid, nodev, noexec), runs `fill(mnt)`, and
 * unmounts, also when `fill` throws. Throws CheckoutError(dest) when mount or umount fail.
 */
export async function withLoopMount<T>(image: string, mnt: string, dest: string, fill: (dir: string) => Promise<T>): Promise<T> {
  await runTool('mount', ['-t', 'xfs', '-o', 'loop,nosuid,nodev,noexec', image, mnt], 'loop-mount the new xfs file system (an xfs rebuild needs root and a loop device)', dest);
  let result: T;
  try {
    result = await fill(mnt);
  } catch (e) {
    await runTool('umount', [mnt], 'unmount the new xfs file system', dest).catch(() => runTool('umount', ['-l', mnt], 'unmount the new xfs file system', dest)).catch(() => undefined);
    throw e;
  }
  await runTool('umount', [mnt], 'unmount the new xfs file system', dest);
  return result;
}
