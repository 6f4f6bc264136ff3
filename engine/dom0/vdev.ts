/** Virtual block device names (Xen docs/misc/vbd-interface.txt). */

/**
 * Linux/xl device number of a virtual device name (docs/misc/vbd-interface.txt):
 * `xvdX[N]` -> 202<<8 | disk<<4 | part for disks < 16, else 1<<28 | disk<<8 | part;
 * `sdX[N]` -> 8<<8 | disk<<4 | part; `hda..hdd` -> 3<<8 / 22<<8 | unit<<6 | part;
 * a plain number is taken as is.
 * @returns the device number, or -1 for a name it does not understand.
 */
export function vdevToDevid(vdev: string): number {
  if (/^[0-9]+$/.test(vdev)) return vdev.length <= 10 && Number(vdev) <= 0x7fffffff ? Number(vdev) : -1;
  const m = /^(xvd|sd|hd)([a-z]+)([0-9]*)$/.exec(vdev);
  if (!m) return -1;
  let disk = 0;
  for (const ch of m[2]) disk = disk * 26 + (ch.charCodeAt(0) - 96);
  disk -= 1;
  const part = m[3] ? Number(m[3]) : 0;
  if (m[1] === 'xvd') {
    if (disk < 16 && part < 16) return (202 << 8) | (disk << 4) | part;
    if (part < 256 && disk < 1 << 20) return (1 << 28) | (disk << 8) | part;
    return -1;
  }
  if (m[1] === 'sd') return disk < 16 && part < 16 ? (8 << 8) | (disk << 4) | part : -1;
  if (disk > 3 || part > 63) return -1;
  return ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | part;
}
