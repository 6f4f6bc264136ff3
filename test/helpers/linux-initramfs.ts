/**
 * A minimal Linux initramfs made at test time (issue 11: no hand-built
 * binaries in git): Debian's busybox-static (fetched with `apt-get download`
 * into the git-ignored `.cache/debian/`, see test/helpers/debian.ts) as
 * /bin/busybox with /bin/sh, and an /init script that mounts /proc, /sys and
 * /dev and starts a shell on the console. Packed as an uncompressed cpio
 * "newc" archive, the format Linux's initramfs unpacker reads
 * (Documentation/driver-api/early-userspace/buffer-format.rst).
 */
import { readFileSync } from 'node:fs';
import { fetchDebianFile } from './debian';

/** One archive member. `mode` holds the file type bits (S_IFDIR/S_IFREG/S_IFLNK/S_IFCHR) and permissions. */
export interface CpioEntry {
  /** Path without a leading slash, e.g. "bin/sh". */
  name: string;
  mode: number;
  /** File contents, or the link target of a symlink; empty for directories and devices. */
  data?: Uint8Array;
  /** Device major/minor of a character or block special file. */
  rdevMajor?: number;
  rdevMinor?: number;
}

/** File type bits of st_mode (POSIX). */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
const pad4 = (n: number): number => (4 - (n & 3)) & 3;

/**
 * Packs `entries` (in order; parents before children) into a cpio "newc"
 * archive (magic 070701: a 110-byte ASCII header of 13 eight-digit hex
 * fields, the NUL-terminated name, padding to 4 bytes, the data, padding to
 * 4 bytes) ending with the "TRAILER!!!" entry. Owner root, mtime 0, inode
 * numbers from 1 in order, nlink 2 for directories and 1 otherwise.
 */
export function cpioNewc(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array): void => {
    parts.push(b);
    total += b.length;
  };
  const all: CpioEntry[] = [...entries, { name: 'TRAILER!!!', mode: 0 }];
  all.forEach((e, i) => {
    const data = e.data ?? new Uint8Array(0);
    const name = Buffer.from(`${e.name}\0`, 'latin1');
    const last = i === all.length - 1;
    const header =
      '070701' +
      hex8(last ? 0 : i + 1) + // c_ino
      hex8(e.mode) +
      hex8(0) + // c_uid
      hex8(0) + // c_gid
      hex8((e.mode & 0o170000) === S_IFDIR ? 2 : 1) + // c_nlink
      hex8(0) + // c_mtime
      hex8(data.length) +
      hex8(0) + // c_devmajor
      hex8(0) + // c_devminor
      hex8(e.rdevMajor ?? 0) +
      hex8(e.rdevMinor ?? 0) +
      hex8(name.length) +
      hex8(0); // c_check
    push(Buffer.from(header, 'latin1'));
    push(name);
    push(new Uint8Array(pad4(110 + name.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  });
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The /init script: mounts the pseudo file systems, says so on the console, runs a shell there. */
export const BUSYBOX_INIT_SCRIPT = [
  '#!/bin/sh',
  '/bin/busybox mount -t proc proc /proc',
  '/bin/busybox mount -t sysfs sysfs /sys',
  '/bin/busybox mount -t devtmpfs devtmpfs /dev',
  'echo "pvscope initramfs: /init running"',
  'exec /bin/sh </dev/console >/dev/console 2>&1',
  '',
].join('\n');

/**
 * Builds the busybox initramfs: directories bin, dev, proc, sys, sbin, root;
 * dev/console (char 5:1, so the kernel can open the console before /init
 * runs); bin/busybox from Debian's `busybox-static` package; bin/sh ->
 * busybox; init (mode 0755, {@link BUSYBOX_INIT_SCRIPT}).
 * @throws Error naming the package when busybox-static cannot be fetched (test/helpers/debian.ts).
 */
export async function busyboxInitramfs(): Promise<Uint8Array> {
  const busybox = readFileSync(await fetchDebianFile('busybox-static', '/bin/busybox'));
  const dir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
  return cpioNewc([
    dir('bin'),
    dir('dev'),
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    dir('proc'),
    dir('sys'),
    dir('sbin'),
    dir('root'),
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox },
    { name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox', 'latin1') },
    { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(BUSYBOX_INIT_SCRIPT, 'latin1') },
  ]);
}
