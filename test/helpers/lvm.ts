/**
 * LVM2 physical volumes for tests: made by the real tools (pvcreate, vgcreate, lvcreate, lvextend) on a loop device
 * over a file or a byte range of one — metadata only, never activated (device-mapper is not needed) — with a private
 * LVM_SYSTEM_DIR whose filter accepts that loop device alone, so neither the host's LVM state nor other tests' devices
 * are touched; or written by hand (label, metadata area, text with their CRCs) for metadata the tools cannot make
 * without device-mapper (thin, snapshot, raid) and for damaged copies.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { lvmCrc } from '../../src/formats/lvm.js';

const NO_DM = ['--driverloaded', 'n'];

/** Whether LVM's tools and loop devices can be used here (root, lvm2 installed, a loop device attachable). */
export const haveLvm: boolean = (() => {
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/loop-control')) return false;
  try {
    execFileSync('lvm', ['version'], { stdio: 'ignore', env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
    execFileSync('losetup', ['-f'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Where one logical volume's segments lie: per segment, its first LV extent, the PV (index into the ranges given to
 * makePv; the first stripe's for a striped segment), its first extent there and the extent count.
 */
export interface LvSegment {
  lvStart: number;
  pv: number;
  pvStart: number;
  count: number;
}

/** The layout `pvs`/`vgs`/`lvs` report for the PV(s) made. */
export interface PvLayout {
  /** Bytes, relative to the PV's start (the first PV's; pvcreate's default is the same on all). */
  peStart: number;
  /** The loop devices the PVs were on (gone by now: for naming PVs in `steps` only). */
  devices: string[];
  extentSize: number;
  lvs: Map<string, LvSegment[]>;
}

/**
 * Makes an LVM2 PV on each byte range [offset, offset + size) of `file` (attached as loop devices for the time it
 * takes) and volume group `vg` over them, runs `steps` with an `lvm(cmd, ...args)` runner (device-mapper off) and the
 * loop devices, and returns the layout lvs reports. The loop devices are detached and the private LVM directory
 * removed whatever happens.
 */
export function makePv(file: string, ranges: Array<{ start: number; size: number }>, vg: string, steps: (lvm: (cmd: string, ...args: string[]) => string, devices: string[]) => void, extentSize = '1M'): PvLayout {
  const loops: string[] = [];
  const sys = fs.mkdtempSync(path.join(path.dirname(file), 'lvm-etc-'));
  try {
    for (const r of ranges) loops.push(execFileSync('losetup', ['-f', '--show', '-o', String(r.start), '--sizelimit', String(r.size), file], { encoding: 'utf8' }).trim());
    const accept = `${loops.map((l) => `"a|^${l}$|"`).join(', ')}, "r|.*|"`;
    fs.writeFileSync(path.join(sys, 'lvm.conf'), [
      `devices { filter = [ ${accept} ] global_filter = [ ${accept} ] obtain_device_list_from_udev = 0 use_devicesfile = 0 hints = "none" }`,
      `global { locking_dir = "${sys}/lock" }`,
      'activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }',
      `backup { backup = 0 archive = 0 backup_dir = "${sys}/backup" archive_dir = "${sys}/archive" }`,
      '',
    ].join('\n'));
    const env = { ...process.env, LVM_SYSTEM_DIR: sys, LVM_SUPPRESS_FD_WARNINGS: '1' };
    const lvm = (cmd: string, ...args: string[]): string => execFileSync('lvm', [cmd, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    lvm('pvcreate', '-qq', '-y', ...loops);
    lvm('vgcreate', '-qq', '-s', extentSize, vg, ...loops);
    steps((cmd, ...args) => lvm(cmd, ...(['lvcreate', 'lvextend', 'lvremove', 'lvrename'].includes(cmd) ? NO_DM : []), ...args), loops);
    const peStart = Number(lvm('pvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'pe_start', loops[0]!).trim());
    const ext = Number(lvm('vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_extent_size', vg).trim());
    const lvs = new Map<string, LvSegment[]>();
    const out = lvm('lvs', '--noheadings', '--separator', ';', '-o', 'lv_name,seg_start_pe,seg_pe_ranges', vg);
    for (const line of out.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const [name, start, ranges] = line.split(';') as [string, string, string];
      const m = /^(\S+):(\d+)-(\d+)/.exec(ranges);
      if (!m) throw new Error(`unexpected lvs output '${line}'`);
      const segs = lvs.get(name) ?? [];
      segs.push({ lvStart: Number(start), pv: loops.indexOf(m[1]!), pvStart: Number(m[2]), count: Number(m[3]) - Number(m[2]) + 1 });
      lvs.set(name, segs.sort((a, b) => a.lvStart - b.lvStart));
    }
    return { peStart, devices: loops, extentSize: ext, lvs };
  } finally {
    for (const l of loops) execFileSync('losetup', ['-d', l]);
    fs.rmSync(sys, { recursive: true, force: true });
  }
}

/** Writes the file system image `image` into logical volume `segments` of the PV at `pvOffset` of `file`. */
export function writeLv(file: string, pvOffset: number, layout: PvLayout, segments: LvSegment[], image: string): void {
  const src = fs.readFileSync(image);
  const fd = fs.openSync(file, 'r+');
  try {
    for (const s of segments) {
      const from = s.lvStart * layout.extentSize;
      const n = Math.min(s.count * layout.extentSize, Math.max(0, src.length - from));
      if (n > 0) fs.writeSync(fd, src, from, n, pvOffset + layout.peStart + s.pvStart * layout.extentSize);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes of a logical volume (its segments one after another), for comparisons. */
export function readLv(file: string, pvOffset: number, layout: PvLayout, segments: LvSegment[]): Buffer {
  const disk = fs.readFileSync(file);
  return Buffer.concat(segments.map((s) => {
    const at = pvOffset + layout.peStart + s.pvStart * layout.extentSize;
    return disk.subarray(at, at + s.count * layout.extentSize);
  }));
}

export const PV_UUID = 'AAAAAABBBBCCCCDDDDEEEEFFFFGGGGGG';
/** The metadata area of a hand-made PV: at 4 KiB, up to the first extent at 1 MiB. */
export const MDA_AT = 4096;
export const PE_START = 1 << 20;

/**
 * A physical volume written by hand, as pvcreate lays it out: label in sector 1, PV header with one data area at
 * 1 MiB and one metadata area at 4 KiB, the metadata area header and `text` right after it, with their CRCs.
 */
export function handMadePv(size: number, text: string): Buffer {
  const pv = Buffer.alloc(size);
  const label = pv.subarray(512, 1024);
  label.write('LABELONE', 0, 'latin1');
  label.writeBigUInt64LE(1n, 8);
  label.writeUInt32LE(32, 20);
  label.write('LVM2 001', 24, 'latin1');
  label.write(PV_UUID, 32, 'latin1');
  label.writeBigUInt64LE(BigInt(size), 64);
  label.writeBigUInt64LE(BigInt(PE_START), 72); // data area: offset, size 0 (to the end), then the terminator
  label.writeBigUInt64LE(BigInt(MDA_AT), 104); // metadata area
  label.writeBigUInt64LE(BigInt(PE_START - MDA_AT), 112);
  label.writeUInt32LE(lvmCrc(label.subarray(20)), 16);
  const mda = pv.subarray(MDA_AT, MDA_AT + 512);
  mda.write(' LVM2 x[5A%r0N*>', 4, 'latin1');
  mda.writeUInt32LE(1, 20);
  mda.writeBigUInt64LE(BigInt(MDA_AT), 24);
  mda.writeBigUInt64LE(BigInt(PE_START - MDA_AT), 32);
  const t = Buffer.from(text);
  t.copy(pv, MDA_AT + 512);
  mda.writeBigUInt64LE(512n, 40);
  mda.writeBigUInt64LE(BigInt(t.length), 48);
  mda.writeUInt32LE(lvmCrc(t), 56);
  mda.writeUInt32LE(lvmCrc(mda.subarray(4)), 0);
  return pv;
}

/** One LV section of a metadata text: `segments` as [type, extent count, pv extent, extra lines]. */
export function lvText(name: string, segments: Array<{ type?: string; count: number; pe?: number; pv?: string; extra?: string }>, visible = true): string {
  let start = 0;
  const segs = segments.map((s, i) => {
    const type = s.type ?? 'striped';
    const body = type === 'striped' ? `stripe_count = 1\nstripes = [\n"${s.pv ?? 'pv0'}", ${s.pe ?? 0}\n]\n` : s.extra ?? '';
    const text = `segment${i + 1} {\nstart_extent = ${start}\nextent_count = ${s.count}\ntype = "${type}"\n${body}}\n`;
    start += s.count;
    return text;
  });
  return `${name} {\nid = "x"\nstatus = ["READ", "WRITE"${visible ? ', "VISIBLE"' : ''}]\nflags = []\nsegment_count = ${segments.length}\n${segs.join('')}}\n`;
}

/** A whole metadata text: volume group `vg` with 1 MiB extents, one PV (this one) of `peCount` extents, and `lvs`. */
export function vgText(vg: string, peCount: number, lvs: string[], extraPvs = ''): string {
  const id = `${PV_UUID.slice(0, 6)}-${PV_UUID.slice(6, 10)}-${PV_UUID.slice(10, 14)}-${PV_UUID.slice(14, 18)}-${PV_UUID.slice(18, 22)}-${PV_UUID.slice(22, 26)}-${PV_UUID.slice(26)}`;
  return `${vg} {\nid = "vg-uuid"\nseqno = 3\nformat = "lvm2" # a comment\nstatus = ["RESIZEABLE", "READ", "WRITE"]\nextent_size = 2048\n`
    + `physical_volumes {\npv0 {\nid = "${id}"\ndevice = "/dev/x"\nstatus = ["ALLOCATABLE"]\npe_start = ${PE_START / 512}\npe_count = ${peCount}\n}\n${extraPvs}}\n`
    + `logical_volumes {\n${lvs.join('\n')}}\n}\n# Generated by hand\ncontents = "Text Format Volume Group"\nversion = 1\ndescription = "with \\"quotes\\""\n`;
}
