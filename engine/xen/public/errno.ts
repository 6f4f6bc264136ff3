/**
 * Xen's errno values (Xen public/errno.h, `XEN_ERRNO(name, value)`). Hypercalls
 * return `-value` on failure. These numbers are Xen's ABI and match Linux's x86
 * numbering. Checked against Debian libxen-dev by test/unit/xen-public-headers.test.ts.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const EWOULDBLOCK = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const EROFS = 30;
export const EMLINK = 31;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
/** Alias of EDEADLK (Xen errno.h). */
export const EDEADLOCK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ENODATA = 61;
export const ETIME = 62;
export const EBADMSG = 74;
export const EOVERFLOW = 75;
export const EILSEQ = 84;
export const ERESTART = 85;
export const ENOTSOCK = 88;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;

/** Name -> positive value, every errno above (EWOULDBLOCK aliases EAGAIN, EDEADLOCK EDEADLK); filter conditions parse names with it. */
export const XEN_ERRNO: Readonly<Record<string, number>> = {
  EPERM,
  ENOENT,
  ESRCH,
  EINTR,
  EIO,
  ENXIO,
  E2BIG,
  ENOEXEC,
  EBADF,
  ECHILD,
  EAGAIN,
  EWOULDBLOCK,
  ENOMEM,
  EACCES,
  EFAULT,
  EBUSY,
  EEXIST,
  EXDEV,
  ENODEV,
  ENOTDIR,
  EISDIR,
  EINVAL,
  ENFILE,
  EMFILE,
  ENOSPC,
  EROFS,
  EMLINK,
  EDOM,
  ERANGE,
  EDEADLK,
  EDEADLOCK,
  ENAMETOOLONG,
  ENOLCK,
  ENOSYS,
  ENOTEMPTY,
  ENODATA,
  ETIME,
  EBADMSG,
  EOVERFLOW,
  EILSEQ,
  ERESTART,
  ENOTSOCK,
  EMSGSIZE,
  EOPNOTSUPP,
  EADDRINUSE,
  EADDRNOTAVAIL,
  ENOBUFS,
  EISCONN,
  ENOTCONN,
  ETIMEDOUT,
  ECONNREFUSED,
};

const NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  8: 'ENOEXEC',
  9: 'EBADF',
  10: 'ECHILD',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  18: 'EXDEV',
  19: 'ENODEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  23: 'ENFILE',
  24: 'EMFILE',
  28: 'ENOSPC',
  30: 'EROFS',
  31: 'EMLINK',
  33: 'EDOM',
  34: 'ERANGE',
  35: 'EDEADLK',
  36: 'ENAMETOOLONG',
  37: 'ENOLCK',
  38: 'ENOSYS',
  39: 'ENOTEMPTY',
  61: 'ENODATA',
  62: 'ETIME',
  74: 'EBADMSG',
  75: 'EOVERFLOW',
  84: 'EILSEQ',
  85: 'ERESTART',
  88: 'ENOTSOCK',
  90: 'EMSGSIZE',
  95: 'EOPNOTSUPP',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  105: 'ENOBUFS',
  106: 'EISCONN',
  107: 'ENOTCONN',
  110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
};

/**
 * Name of a Xen errno value; accepts the positive number or a negative
 * hypercall result (e.g. -22 -> "EINVAL"). Unknown values give "E<n>".
 */
export function errnoName(v: number): string {
  const n = Math.abs(v);
  return NAMES[n] ?? `E${n}`;
}
