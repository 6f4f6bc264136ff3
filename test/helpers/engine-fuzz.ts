/**
 * The engine fuzzer (issue 8): deterministic random cases against a whole
 * Machine, run in a child process so that a hang fails a test instead of
 * wedging mocha.
 *
 * Kinds of case:
 * - `hypercalls`: a guest that executes a table of hypercalls; numbers and
 *   arguments random and pointer-shaped (its scratch area, its stack, text,
 *   start_info, Xen's area, non-canonical, page-crossing, DOMID_SELF, ...);
 *   scratch prefilled with random bytes.
 * - `mmu`: the same guest with MMU-shaped calls (mmu_update, mmuext_op,
 *   update_va_mapping, memory_op, set_gdt, grant_table_op) over scratch
 *   filled with PTE-shaped garbage built from the guest's own MFNs, its page
 *   tables and foreign frames.
 * - `instructions`: random instruction streams (biased toward HLT,
 *   hypercalls, privileged and system instructions, loops, string ops,
 *   stack games) after random register values.
 * - `rings`: the xenstore and console rings and shared_info scribbled with
 *   garbage between run() calls while the guest notifies ports 1 and 2 and
 *   makes random hypercalls.
 *
 * Each case ends in one of: `poweroff` (the guest finished: Xen answered
 * every call), `crash` (a shutdown with a reason), `shutdown:<reason>`,
 * `blocked`, `filter:<id>`, `timeout` (its run() calls all returned
 * 'budget'); an exception out of the engine, a crash without a reason, a
 * run() slice past the bound are failures, reported with seed and case.
 *
 * As a script: `node --require tsx/cjs test/helpers/engine-fuzz.ts JOB.json`
 * prints one `{"fuzz": FuzzResult}` line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildXenGuest } from './xen-guest';
import { Rng } from './x86-gen';

export type FuzzKind = 'hypercalls' | 'mmu' | 'instructions' | 'rings';

export interface FuzzJob {
  kind: FuzzKind;
  bits: 32 | 64;
  /** Path of the guest ELF built by `fuzzGuest(kind, bits)`. */
  kernel: string;
  seed: number;
  cases: number;
  /** Budget of each Machine.run call. */
  budget: number;
  /** run() calls per case before it counts as a clean timeout. */
  runsPerCase: number;
  /** A run() slower than this (ms) is recorded as a failure. */
  sliceBoundMs: number;
  /** Stop starting new cases after this much host time (ms); 0: no limit. */
  maxTotalMs: number;
}

export interface FuzzResult {
  kind: FuzzKind;
  bits: 32 | 64;
  cases: number;
  runs: number;
  outcomes: Record<string, number>;
  /** Longest host time of one Machine.run call (ms) and the case that took it. */
  maxSliceMs: number;
  maxSliceCase: string;
  peakRssMiB: number;
  totalMs: number;
  instructions: number;
  hypercalls: number;
  preemptions: number;
  /** Exceptions out of the engine, crashes without a reason, slices past the bound (first 20). */
  failures: string[];
  failureCount: number;
  /** Set when the child itself failed (no result line). */
  error?: string;
}

const TABLE_BYTES = 65536;

/** Guest sources: a hypercall-table interpreter, or a jump into a code area the fuzzer fills. */
function guestAsm(kind: FuzzKind, bits: 32 | 64): string {
  const area =
    kind === 'instructions'
      ? `  .balign 4096\nfuzzcode: .fill 16384, 1, 0xcc\n`
      : `  .data\n  .balign 4096\nfuzztab: .fill ${TABLE_BYTES}, 1, 0\n  .text\n`;
  if (kind === 'instructions') {
    return bits === 64
      ? `_start:\n  lea stack_top(%rip), %rsp\n  jmp fuzzcode\n${area}`
      : `_start:\n  mov $stack_top, %esp\n  jmp fuzzcode\n${area}`;
  }
  if (bits === 64) {
    return `
_start:
  lea stack_top(%rip), %rsp
  lea fuzztab(%rip), %r13
  mov (%r13), %r12d
  add $8, %r13
1:
  test %r12, %r12
  jz 2f
  mov (%r13), %rax
  mov 8(%r13), %rdi
  mov 16(%r13), %rsi
  mov 24(%r13), %rdx
  mov 32(%r13), %r10
  mov 40(%r13), %r8
  mov 48(%r13), %r9
  syscall
  add $56, %r13
  dec %r12
  jmp 1b
2:
  SHUTDOWN 0
${area}`;
  }
  return `
_start:
  mov $stack_top, %esp
  mov $fuzztab, %eax
  mov (%eax), %edx
  mov %edx, left
  add $8, %eax
  mov %eax, cur
1:
  cmpl $0, left
  je 2f
  mov cur, %ebp
  mov (%ebp), %eax
  mov 4(%ebp), %ebx
  mov 8(%ebp), %ecx
  mov 12(%ebp), %edx
  mov 16(%ebp), %esi
  mov 20(%ebp), %edi
  mov 24(%ebp), %ebp
  int $0x82
  addl $28, cur
  decl left
  jmp 1b
2:
  SHUTDOWN 0
  .data
cur: .long 0
left: .long 0
  .text
${area}`;
}

/** Assembles the guest for `kind` into `dir`; returns the ELF's path. */
export function fuzzGuest(dir: string, kind: FuzzKind, bits: 32 | 64): string {
  const p = join(dir, `fuzz-${kind}-${bits}.elf`);
  writeFileSync(p, buildXenGuest({ bits, asm: guestAsm(kind, bits) }));
  return p;
}

/** Spawns the fuzzer for `job`; `timeoutMs` kills a hung child (reported as an error). */
export function runFuzz(job: FuzzJob, timeoutMs: number): FuzzResult {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-fuzz-'));
  try {
    const jf = join(dir, 'job.json');
    writeFileSync(jf, JSON.stringify(job));
    const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', __filename, jf], {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 << 20,
    });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{"fuzz":'));
    if (!line) {
      return {
        kind: job.kind,
        bits: job.bits,
        cases: 0,
        runs: 0,
        outcomes: {},
        maxSliceMs: Infinity,
        maxSliceCase: '',
        peakRssMiB: 0,
        totalMs: 0,
        instructions: 0,
        hypercalls: 0,
        preemptions: 0,
        failures: [],
        failureCount: 1,
        error: `fuzz child exited ${r.status} ${r.signal ?? ''} ${(r.stderr ?? '').slice(-4000)}`,
      };
    }
    return (JSON.parse(line) as { fuzz: FuzzResult }).fuzz;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// The child.

interface Layout {
  bits: 32 | 64;
  scratch: bigint;
  table: bigint;
  code: bigint;
  stackTop: bigint;
  text: bigint;
  startInfo: bigint;
  /** The guest's own MFNs (mfn_list), its page-table MFNs, and its shared_info / ring MFNs. */
  mfns: number[];
  ptMfns: number[];
  sharedInfoMaddr: bigint;
  storeMfn: number;
  consoleMfn: number;
}

const mask = (bits: 32 | 64) => (bits === 64 ? (1n << 64n) - 1n : 0xffffffffn);

/** A random argument, often shaped like a pointer the guest could pass. */
function randArg(r: Rng, L: Layout): bigint {
  const m = mask(L.bits);
  const k = r.int(20);
  switch (k) {
    case 0:
      return 0n;
    case 1:
      return BigInt(r.int(64));
    case 2:
      return BigInt(r.u32());
    case 3:
      return r.u64() & m;
    case 4:
      return m; // -1
    case 5:
    case 6:
    case 7:
      return (L.scratch + BigInt(r.int(65536) & ~(r.bool(0.8) ? 7 : 0))) & m;
    case 8:
      return L.scratch + 65536n - BigInt(r.int(16)); // crosses into the stack / end of scratch
    case 9:
      return L.stackTop - BigInt(r.int(16384));
    case 10:
      return L.text + BigInt(r.int(4096));
    case 11:
      return L.startInfo + BigInt(r.int(4096));
    case 12:
      // Xen's own area: 64-bit hypervisor range (M2P, ...), 32-bit top of the address space.
      return L.bits === 64
        ? 0xffff800000000000n + BigInt(r.int(0x10000)) * 0x1000n + BigInt(r.int(4096))
        : 0xf5800000n + BigInt(r.int(0x800000));
    case 13:
      return L.bits === 64 ? 0x0000800000000000n + BigInt(r.u32()) : BigInt(0xfffff000 + r.int(4096));
    case 14:
      return 0x7ff0n; // DOMID_SELF
    case 15:
      return BigInt(
        r.pick([1, 2, 3, 4, 8, 16, 64, 128, 256, 1024, 4096, 0x7fffffff, 0x80000000, 0xffffffff]),
      );
    case 16:
      return (BigInt(r.pick(L.mfns)) << 12n) | BigInt(r.int(0x1000));
    case 17:
      return BigInt(r.pick(L.mfns));
    case 18:
      return L.table + BigInt(r.int(TABLE_BYTES));
    default:
      return BigInt(r.int(0x100000)) << 12n;
  }
}

/** A hypercall number: mostly the ones Xen defines, sometimes past them. */
function randHypercall(r: Rng): number {
  if (r.bool(0.85)) {
    // Skip a few that only end the case at once most of the time: still there, less often.
    return r.int(41);
  }
  return r.pick([41, 48, 55, 63, 64, 255, 0xffff, r.int(0x10000)]);
}

function u64le(b: Uint8Array, off: number, v: bigint): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(off, BigInt.asUintN(64, v), true);
}

function u32le(b: Uint8Array, off: number, v: number | bigint): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(
    off,
    Number(BigInt.asUintN(32, BigInt(v))),
    true,
  );
}

/** Encodes the hypercall table the interpreter guest runs. */
function encodeTable(L: Layout, calls: bigint[][]): Uint8Array {
  const w = L.bits / 8;
  const rec = 7 * w;
  const n = Math.min(calls.length, Math.floor((TABLE_BYTES - 8) / rec));
  const b = new Uint8Array(8 + n * rec);
  u32le(b, 0, n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 7; k++) {
      const v = calls[i][k] ?? 0n;
      if (w === 8) u64le(b, 8 + i * rec + k * 8, v);
      else u32le(b, 8 + i * rec + k * 4, v);
    }
  }
  return b;
}

/** A PTE-shaped 64-bit word: a frame the guest owns, a page table, a foreign or absurd frame, random flags. */
function pteShaped(r: Rng, L: Layout): bigint {
  const mfn = r.bool(0.5)
    ? r.pick(L.mfns)
    : r.bool(0.5)
      ? r.pick(L.ptMfns)
      : r.pick([0, 1, 0xfffff, r.int(0x100000), L.storeMfn, L.consoleMfn, Number(L.sharedInfoMaddr >> 12n)]);
  const flags = BigInt(r.pick([0x1, 0x3, 0x7, 0x27, 0x67, 0x63, 0x183, 0x80, r.int(0x1000)]));
  const nx = r.bool(0.2) ? 1n << 63n : 0n;
  return nx | (BigInt(mfn) << 12n) | flags;
}

/** Fills scratch with MMU-shaped records: mmu_update pairs, mmuext ops, reservations, grant ops. */
function mmuScratch(r: Rng, L: Layout): Uint8Array {
  const b = new Uint8Array(65536);
  for (let off = 0; off + 16 <= b.length; off += 16) {
    const kind = r.int(4);
    if (kind === 0) {
      // mmu_update request: ptr = machine address of a PTE | cmd (0 normal, 1 machphys, 2 preserve AD, 3+ bad).
      const table = r.bool(0.7) ? r.pick(L.ptMfns) : r.pick(L.mfns);
      u64le(b, off, (BigInt(table) << 12n) | BigInt(r.int(512) * 8) | BigInt(r.int(4)));
      u64le(b, off + 8, r.bool(0.8) ? pteShaped(r, L) : BigInt(r.int(0x10000)));
    } else if (kind === 1) {
      // mmuext_op: cmd, arg1 (an MFN or a linear address), arg2 (a count, a vcpumask pointer, an MFN).
      u32le(b, off, r.int(22));
      u64le(b, off + 8, r.bool(0.6) ? BigInt(r.pick(r.bool(0.5) ? L.ptMfns : L.mfns)) : randArg(r, L));
    } else if (kind === 2) {
      // xen_memory_reservation-ish: extent_start, nr_extents, extent_order, mem_flags, domid.
      u64le(b, off, randArg(r, L));
      u64le(b, off + 8, BigInt(r.pick([0, 1, 16, 600, 0x3ffffff, r.u32()])));
    } else {
      u64le(b, off, pteShaped(r, L));
      u64le(b, off + 8, BigInt(r.pick(L.mfns)));
    }
  }
  return b;
}

/** One MMU-shaped hypercall. */
function mmuCall(r: Rng, L: Layout): bigint[] {
  const s = () => L.scratch + BigInt(r.int(4096) * 16);
  const count = () => BigInt(r.pick([0, 1, 2, 7, 64, 300, 1000, 0x7fffffff, 0x80000001, r.u32()]));
  const fd = () => BigInt(r.pick([0x7ff0, 0x7ff0, 0, 1, 0x7ff1, 0x7ff2, 0x10000 | 0x7ff0, r.u32()]));
  const done = () => (r.bool(0.5) ? 0n : s());
  switch (r.int(8)) {
    case 0:
    case 1:
      return [1n, s(), count(), done(), fd()];
    case 2:
    case 3:
      return [26n, s(), count(), done(), fd()];
    case 4:
      // update_va_mapping(va, pte, flags): va in scratch, text, stack, Xen's area.
      return [
        14n,
        r.bool(0.6) ? (L.scratch + BigInt(r.int(16) * 4096)) & ~0xfffn : randArg(r, L),
        pteShaped(r, L),
        BigInt(r.pick([0, 1, 2, 3, 5, 6, r.u32()])),
      ];
    case 5:
      return [12n, BigInt(r.pick([0, 1, 6, 7, 8, 12, 14, 4, r.int(64), r.int(1 << 20)])), s()];
    case 6:
      return [2n, s(), BigInt(r.pick([0, 1, 14, 16, 8192, r.u32()]))];
    default:
      return [20n, BigInt(r.int(12)), s(), count()];
  }
}

/** Random instruction bytes, biased toward what makes the engine work hardest or exit. */
function randCode(r: Rng, L: Layout, len: number): Uint8Array {
  const out: number[] = [];
  // Registers first: random values (mov $imm, %reg), RSP sometimes too.
  const regs = L.bits === 64 ? 16 : 8;
  for (let reg = 0; reg < regs; reg++) {
    if (reg === 4 && !r.bool(0.1)) continue;
    if (!r.bool(0.7)) continue;
    const v = randArg(r, L);
    if (L.bits === 64) {
      out.push(reg >= 8 ? 0x49 : 0x48, 0xb8 + (reg & 7));
      for (let i = 0; i < 8; i++) out.push(Number((v >> BigInt(i * 8)) & 0xffn));
    } else {
      out.push(0xb8 + reg);
      for (let i = 0; i < 4; i++) out.push(Number((v >> BigInt(i * 8)) & 0xffn));
    }
  }
  const hc = (nr: number) => [
    0xb8,
    nr & 0xff,
    (nr >> 8) & 0xff,
    0,
    0,
    ...(L.bits === 64 ? [0x0f, 0x05] : [0xcd, 0x82]),
  ];
  const templates: (() => number[])[] = [
    () => Array.from(r.bytes(1 + r.int(15))),
    () => Array.from(r.bytes(1 + r.int(15))),
    () => [0xf4], // hlt
    () => hc(randHypercall(r)),
    () => hc(29), // sched_op with whatever is in RDI/RSI
    () => [0xcd, r.int(256)], // int n
    () => [r.pick([0xfa, 0xfb, 0xcc, 0xce, 0xf1, 0x9c, 0x9d, 0xcf])], // cli sti int3 into int1 pushf popf iret
    () => [
      0x0f,
      r.pick([0x05, 0x07, 0x06, 0x08, 0x09, 0x0b, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0xa2, 0xaa]),
    ],
    () => [0x0f, r.pick([0x00, 0x01, 0x20, 0x21, 0x22, 0x23]), r.int(256)], // system groups, mov cr/dr
    () => [r.pick([0xe4, 0xe5, 0xe6, 0xe7]), r.int(256)], // in/out imm8
    () => [r.pick([0xec, 0xed, 0xee, 0xef, 0x6c, 0x6d, 0x6e, 0x6f])], // in/out dx, ins/outs
    () => [0xeb, 0xfe], // jmp . (a clean timeout)
    () => [0xeb, r.int(256)],
    () => [0xe8, ...Array.from(r.bytes(4))], // call rel32 anywhere
    () => [
      r.pick([0xf3, 0xf2]),
      ...(L.bits === 64 ? [0x48] : []),
      r.pick([0xa4, 0xa5, 0xaa, 0xab, 0xa6, 0xae]),
    ], // rep string
    () => [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2], // Xen forced-emulation prefix + cpuid
    () => [r.pick([0x8e, 0x8c]), r.int(256)], // mov to/from segment registers
    () => [0xff, r.int(256), ...Array.from(r.bytes(4))], // group 5: indirect call/jmp/push
    () => [0xc3], // ret
    () => [0x0f, 0xae, r.int(256)], // fxsave/ldmxcsr/xsave group
  ];
  while (out.length < len) out.push(...r.pick(templates)());
  return new Uint8Array(out.slice(0, len));
}

/** Ring and shared_info garbage: structured (indices near and far, plausible headers) or random bytes. */
function scribble(r: Rng, L: Layout, m: import('../../engine/machine-api').Machine): void {
  const w = (addr: bigint, b: Uint8Array) => m.writeMemory('machine', addr, b, 0);
  const idx = () =>
    new Uint8Array(new Uint32Array([r.pick([0, 1, 1023, 1024, 1025, 2048, 0x7fffffff, r.u32()])]).buffer);
  const store = BigInt(L.storeMfn) << 12n;
  const cons = BigInt(L.consoleMfn) << 12n;
  switch (r.int(6)) {
    case 0: {
      // xenstore request: xsd_sockmsg header (type, req_id, tx_id, len) + payload, then req_prod.
      const hdr = new Uint8Array(16);
      u32le(hdr, 0, r.bool(0.8) ? r.int(32) : r.u32());
      u32le(hdr, 4, r.u32());
      u32le(hdr, 8, r.bool(0.7) ? 0 : r.u32());
      const plen = r.bool(0.6) ? r.int(64) : r.pick([4096, 0xffffffff, r.u32()]);
      u32le(hdr, 12, plen);
      const at = r.int(1024);
      w(store + BigInt(at), hdr.subarray(0, Math.min(16, 1024 - at)));
      w(store + BigInt((at + 16) % 1024), r.bytes(Math.min(64, 1024 - ((at + 16) % 1024))));
      w(store + 2052n, idx()); // req_prod
      if (r.bool(0.3)) w(store + 2048n, idx()); // req_cons
      break;
    }
    case 1:
      // rsp_cons / rsp_prod / features / connection / error garbage.
      w(store + 2048n + BigInt(r.int(6) * 4), idx());
      break;
    case 2:
      // console: out[] bytes (with escapes and markup), out_prod / out_cons, in_prod / in_cons.
      w(cons + 1024n + BigInt(r.int(2048)), new TextEncoder().encode('\x1b[31m<b>&amp;</b>\x00\xff'));
      w(cons + 3072n + BigInt(r.int(4) * 4), idx());
      break;
    case 3:
      w(store + BigInt(r.int(4096)), r.bytes(1 + r.int(256)));
      break;
    case 4:
      w(cons + BigInt(r.int(4096)), r.bytes(1 + r.int(256)));
      break;
    default:
      // shared_info: pending / mask bitmaps, vcpu_info (upcall_pending, mask, pending_sel), time fields.
      w(L.sharedInfoMaddr + BigInt(r.int(4096)), r.bytes(1 + r.int(64)));
      break;
  }
}

function layoutOf(m: ReturnType<typeof import('../../engine/machine').createMachine>, bits: 32 | 64): Layout {
  const sym = (n: string) => m.symbols.resolve(n) ?? 0n;
  const regs = m.getRegisters(0);
  const si = regs.rsi ?? regs.esi;
  const rd = (va: bigint, n: number) => {
    const b = m.readMemory('virtual', va, n, 0);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return n === 8 ? dv.getBigUint64(0, true) : BigInt(dv.getUint32(0, true));
  };
  const w = bits / 8;
  // start_info (Xen public/xen.h): 64-bit offsets shared_info 0x28, store_mfn 0x38, console.mfn 0x48,
  // pt_base 0x58, nr_pt_frames 0x60, mfn_list 0x68; 32-bit 0x24, 0x2c, 0x34, 0x3c, 0x40, 0x44.
  const o =
    bits === 64 ? [0x28, 0x38, 0x48, 0x58, 0x60, 0x68, 0x20] : [0x24, 0x2c, 0x34, 0x3c, 0x40, 0x44, 0x20];
  const sharedInfoMaddr = rd(si + BigInt(o[0]), w);
  const storeMfn = Number(rd(si + BigInt(o[1]), w));
  const consoleMfn = Number(rd(si + BigInt(o[2]), w));
  const ptBase = rd(si + BigInt(o[3]), w);
  const nrPt = Number(rd(si + BigInt(o[4]), w));
  const mfnList = rd(si + BigInt(o[5]), w);
  const nrPages = Number(rd(si + BigInt(o[6]), w));
  const mfns: number[] = [];
  const list = m.readMemory('virtual', mfnList, nrPages * w, 0);
  const dv = new DataView(list.buffer, list.byteOffset, list.byteLength);
  for (let i = 0; i + w <= list.length; i += w)
    mfns.push(w === 8 ? Number(dv.getBigUint64(i, true)) : dv.getUint32(i, true));
  const ptPfn = Number((ptBase - 0n) >> 12n);
  const ptMfns = mfns.slice(ptPfn, ptPfn + Math.max(1, nrPt));
  return {
    bits,
    scratch: sym('scratch'),
    table: sym('fuzztab'),
    code: sym('fuzzcode'),
    stackTop: sym('stack_top'),
    text: sym('_start'),
    startInfo: si,
    mfns: mfns.length ? mfns : [0],
    ptMfns: ptMfns.length ? ptMfns : [0],
    sharedInfoMaddr,
    storeMfn,
    consoleMfn,
  };
}

function childMain(jobPath: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createMachine } = require('../../engine/machine') as typeof import('../../engine/machine');
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as FuzzJob;
  const kernel = new Uint8Array(readFileSync(job.kernel));
  const res: FuzzResult = {
    kind: job.kind,
    bits: job.bits,
    cases: 0,
    runs: 0,
    outcomes: {},
    maxSliceMs: 0,
    maxSliceCase: '',
    peakRssMiB: 0,
    totalMs: 0,
    instructions: 0,
    hypercalls: 0,
    preemptions: 0,
    failures: [],
    failureCount: 0,
  };
  const fail = (what: string) => {
    res.failureCount++;
    if (res.failures.length < 20) res.failures.push(what);
  };
  const t0 = performance.now();
  for (let c = 0; c < job.cases; c++) {
    if (job.maxTotalMs > 0 && performance.now() - t0 > job.maxTotalMs) break;
    const seed = (job.seed * 1_000_003 + c) >>> 0;
    const tag = `${job.kind}/${job.bits} seed ${job.seed} case ${c}`;
    const r = new Rng(seed);
    let m: ReturnType<typeof createMachine> | null = null;
    let outcome = 'timeout';
    try {
      m = createMachine({
        name: 'fuzz',
        kernel,
        memory: 16,
        vcpus: r.bool(0.2) ? 2 : 1,
        disks: [],
        vifs: [],
      });
      const L = layoutOf(m, job.bits);
      if (job.kind === 'instructions') {
        m.writeMemory('virtual', L.code, randCode(r, L, 2048 + r.int(8192)), 0);
      } else {
        const calls: bigint[][] = [];
        const n = 1 + r.int(job.kind === 'rings' ? 400 : 200);
        if (job.kind === 'mmu') m.writeMemory('virtual', L.scratch, mmuScratch(r, L), 0);
        else m.writeMemory('virtual', L.scratch, r.bytes(65536), 0);
        for (let i = 0; i < n; i++) {
          if (job.kind === 'mmu') calls.push(r.bool(0.85) ? mmuCall(r, L) : [BigInt(randHypercall(r))]);
          else if (job.kind === 'rings' && r.bool(0.7)) {
            // EVTCHNOP_send(&port) with port 1 (xenstore) or 2 (console) in scratch.
            const port = L.scratch + 65536n - 16n;
            m.writeMemory('virtual', port, new Uint8Array([1 + r.int(2), 0, 0, 0]), 0);
            calls.push([32n, 4n, port]);
          } else {
            const call = [BigInt(randHypercall(r))];
            for (let k = 0; k < 6; k++) call.push(randArg(r, L));
            calls.push(call);
          }
        }
        m.writeMemory('virtual', L.table, encodeTable(L, calls), 0);
      }
      for (let run = 0; run < job.runsPerCase; run++) {
        if (job.kind === 'rings') for (let k = 0; k < 4; k++) scribble(r, L, m);
        const a = performance.now();
        const s = m.run(job.budget);
        const dt = performance.now() - a;
        res.runs++;
        if (dt > res.maxSliceMs) {
          res.maxSliceMs = dt;
          res.maxSliceCase = tag;
        }
        if (dt > job.sliceBoundMs) fail(`${tag}: run(${job.budget}) took ${dt.toFixed(1)} ms`);
        if (s.kind === 'budget') continue;
        if (s.kind === 'shutdown') {
          if (s.reason === 'crash') {
            outcome = 'crash';
            if (!m.dom.crashed && !s.description) fail(`${tag}: crash without a reason`);
          } else outcome = s.reason === 'poweroff' ? 'poweroff' : `shutdown:${s.reason}`;
        } else if (s.kind === 'blocked') {
          outcome = 'blocked';
          if (!/^vCPU \d+ blocked/.test(s.description)) fail(`${tag}: blocked stop without a reason`);
        } else if (s.kind === 'filter') outcome = `filter:${s.filter}`;
        else outcome = s.kind;
        break;
      }
      res.instructions += m.info.instructionsRetired;
      res.hypercalls += m.env.count;
      res.preemptions += m.env.preemptions ?? 0;
    } catch (e) {
      outcome = 'exception';
      fail(`${tag}: uncaught ${(e as Error)?.stack?.split('\n').slice(0, 4).join(' | ') ?? String(e)}`);
    } finally {
      try {
        m?.destroy();
      } catch (e) {
        fail(`${tag}: destroy threw ${(e as Error)?.message}`);
      }
    }
    res.cases++;
    res.outcomes[outcome] = (res.outcomes[outcome] ?? 0) + 1;
    if ((c & 15) === 0) res.peakRssMiB = Math.max(res.peakRssMiB, process.memoryUsage.rss() / 2 ** 20);
  }
  res.peakRssMiB = Math.max(res.peakRssMiB, process.memoryUsage.rss() / 2 ** 20);
  res.totalMs = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ fuzz: res })}\n`);
}

if (require.main === module) childMain(process.argv[2]);
