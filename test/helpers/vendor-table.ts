/**
 * Every behaviour where Intel and AMD processors differ and a differential
 * test can see it: ONE table (`VENDOR_ROWS`), each row with its Intel SDM and
 * AMD APM reference.
 *
 * How the differential tests use it. The engine follows ONE vendor, the one
 * its CPUID reports (`engineVendor()`, engine/cpu/cpuid.ts: GenuineIntel).
 * When the host's vendor (`hostVendor()`, /proc/cpuinfo `vendor_id`) is the
 * engine's, the host's result is compared as it is. When it is not, each row
 * that applies to the case replaces the vendor-dependent fields of the
 * host's result with the engine vendor's documented values, computed exactly
 * from the case's inputs (`row.engineValue`), and only those fields: nothing
 * is loosened on either vendor. A row whose engine-vendor value cannot be
 * computed for a case makes the caller pass it (e.g. `x87Pointers`).
 *
 * Shapes: results are `NativeOutcome`s (test/helpers/native-harness.ts);
 * register values BigInt.
 */
import * as fs from 'node:fs';
import { defaultCpuidPolicy } from '../../engine/cpu/cpuid';
import {
  scratchInit,
  SCRATCH_BASE,
  type Bitness,
  type NativeInput,
  type NativeOutcome,
} from './native-harness';

/** CPU vendor strings (CPUID leaf 0 EBX-EDX-ECX). Hygon's Dhyana follows AMD. */
export type Vendor = 'GenuineIntel' | 'AuthenticAMD' | 'HygonGenuine' | 'other';

/** Vendors whose behaviour is the AMD column (AMD and its derivatives). */
export function isAmdLike(v: Vendor): boolean {
  return v === 'AuthenticAMD' || v === 'HygonGenuine';
}

function asVendor(s: string): Vendor {
  return s === 'GenuineIntel' || s === 'AuthenticAMD' || s === 'HygonGenuine' ? s : 'other';
}

let hostCache: Vendor | undefined;
/** The host processor's vendor (Linux /proc/cpuinfo `vendor_id`; 'other' when unreadable). */
export function hostVendor(): Vendor {
  if (hostCache) return hostCache;
  let v: Vendor = 'other';
  try {
    const line = fs
      .readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('vendor_id'));
    if (line) v = asVendor(line.split(':')[1].trim());
  } catch {
    /* not Linux: the native side is skipped anyway */
  }
  if (process.env.PVSCOPE_HOST_VENDOR) v = asVendor(process.env.PVSCOPE_HOST_VENDOR); // tests of this table only
  hostCache = v;
  return v;
}

/** The vendor the engine's default CPUID reports (leaf 0), i.e. the one whose behaviour it follows. */
export function engineVendor(): Vendor {
  const r = defaultCpuidPolicy().leaf(0, 0);
  const s = [r.ebx, r.edx, r.ecx]
    .map((x) => String.fromCharCode(x & 255, (x >>> 8) & 255, (x >>> 16) & 255, x >>> 24))
    .join('');
  return asVendor(s);
}

/** True when the host's results are compared as they are (the host is the engine's vendor). */
export function hostIsEngineVendor(): boolean {
  return hostVendor() === engineVendor();
}

/** What a row is given to compute the engine vendor's value. */
export interface RowContext {
  bitness: Bitness;
  /** The case's inputs. */
  input: NativeInput;
  /** Linear address of the case's first instruction. */
  caseStart: number;
  /** The scratch buffer's initial contents (`scratchInit`), needed with `fxsaveAt`. */
  initial?: Uint8Array;
  /** Scratch offsets of the FXSAVE images the body stores (the FXSAVE rows patch those bytes as well). */
  fxsaveAt?: number[];
  /**
   * XSAVE-family images the body stores: scratch offset and which parts of
   * the legacy region the instruction wrote (`x87`: bytes 0-23; `mxcsr`:
   * bytes 24-31). The FXSAVE rows patch only the written parts.
   */
  xsaveAt?: Array<{ at: number; x87: boolean; mxcsr: boolean }>;
  /** The case's assembler body (rows about string instructions read the mnemonic). */
  body?: string;
  /** For the `wide-pf-cr2` row: the engine's documented CR2 (the first byte of the operand on a not-present page). */
  cr2?: bigint;
  /** For x87 pointer rows: the engine's documented FIP/FDP/FOP after the case (default: the input image's). */
  x87Pointers?: { fip: bigint; fdp: bigint; fop: number };
}

/** One vendor difference. */
export interface VendorRow {
  /** Short name, used to tag cases. */
  id: string;
  /** The instruction(s) and the situation. */
  what: string;
  /** Intel's behaviour and the SDM reference. */
  intel: string;
  /** AMD's behaviour and the APM reference. */
  amd: string;
  /**
   * Applies to every case with an FXSAVE image (`fpu`), not only to cases
   * tagged with the row.
   */
  everyFpuCase?: boolean;
  /**
   * The engine vendor's (Intel's) result for a case, from a host result of
   * another vendor: returns a copy of `host` with the vendor-dependent fields
   * replaced by their documented values.
   */
  engineValue(host: NativeOutcome, ctx: RowContext): NativeOutcome;
}

function rd32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function wrLE(b: Uint8Array, o: number, n: number, v: bigint): void {
  for (let i = 0; i < n; i++) b[o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
function rdLE(b: Uint8Array, o: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i]);
  return v;
}

/**
 * Applies `edit` to the host's FXSAVE image after the case and to every
 * FXSAVE image the body stored in the scratch buffer (`ctx.fxsaveAt`; bytes
 * edited there are compared against `memDiff`, so an edit that writes a
 * byte makes it an expected change).
 */
function withFpu(host: NativeOutcome, ctx: RowContext, edit: (img: Uint8Array) => void): NativeOutcome {
  let out = host;
  if (host.fpu) {
    const img = host.fpu.slice();
    edit(img);
    out = { ...out, fpu: img };
  }
  const images = [
    ...(ctx.fxsaveAt ?? []).map((at) => ({ at, x87: true, mxcsr: true })),
    ...(ctx.xsaveAt ?? []),
  ];
  if (images.length) {
    const memDiff = new Map(out.memDiff);
    for (const { at, x87, mxcsr } of images) {
      // only the 32 header bytes carry vendor-dependent fields
      const img = new Uint8Array(32);
      for (let i = 0; i < 32; i++) img[i] = memDiff.get(at + i) ?? ctx.initial?.[at + i] ?? 0;
      const before = img.slice();
      edit(img);
      // parts the instruction did not write keep their bytes
      for (let i = 0; i < 32; i++) if (!(i < 24 ? x87 : mxcsr)) img[i] = before[i];
      for (let i = 0; i < 32; i++) {
        if (ctx.initial && ctx.initial[at + i] === img[i]) memDiff.delete(at + i);
        else memDiff.set(at + i, img[i]);
      }
    }
    out = { ...out, memDiff };
  }
  return out;
}

/** Intel's MXCSR_MASK with DAZ (bits 0-15): the engine's `MXCSR_MASK`. */
const INTEL_MXCSR_MASK = 0xffff;

/**
 * The table. Keep each row's references exact; add a row (never a special
 * case in a test) when a new vendor difference turns up.
 */
export const VENDOR_ROWS: Record<string, VendorRow> = {
  'mxcsr-mm-bit': {
    id: 'mxcsr-mm-bit',
    what: 'LDMXCSR (and FXRSTOR) of a value with MXCSR bit 17 (AMD MM) set',
    intel: '#GP(0): bit 17 is reserved (SDM vol. 2 LDMXCSR "Protected Mode Exceptions")',
    amd: 'accepted where MisAlignSse = 1 (APM vol. 4 LDMXCSR)',
    engineValue: (host, ctx) => ({
      kind: 'signal',
      signal: 11,
      rip: BigInt(ctx.caseStart),
      addr: 0n,
      regs: ctx.input.regs.slice(),
      rflags: ctx.input.rflags,
      memDiff: new Map(),
      ...(ctx.input.fpu && host.fpu ? { fpu: ctx.input.fpu.slice() } : {}),
    }),
  },
  'mxcsr-mask': {
    id: 'mxcsr-mask',
    what: 'MXCSR_MASK field of FXSAVE/XSAVE images (bytes 28-31), and the MXCSR bits LDMXCSR/FXRSTOR/XRSTOR accept',
    intel:
      'MXCSR_MASK = 0x0000FFFF on processors with DAZ; bits 16-31 of MXCSR are reserved: setting one is #GP(0) (SDM vol. 1 §11.6.6 "Guidelines for Writing to the MXCSR Register", vol. 2 LDMXCSR, FXRSTOR)',
    amd: 'MXCSR_MASK = 0x0002FFFF where CPUID Fn8000_0001 ECX[MisAlignSse] = 1: bit 17 (MM, misaligned exception mask) is writable (APM vol. 4 "LDMXCSR", vol. 2 §4.2.2 "MXCSR Register")',
    everyFpuCase: true,
    engineValue: (host, ctx) => withFpu(host, ctx, (img) => wrLE(img, 28, 4, BigInt(INTEL_MXCSR_MASK))),
  },
  'rep-addr32-count0': {
    id: 'rep-addr32-count0',
    what: '64-bit mode, 32-bit address size (67h) REP/REPE/REPNE MOVS/STOS/LODS/CMPS/SCAS with ECX = 0 (no iteration)',
    intel:
      'ECX and the index registers the instruction uses (RSI for MOVS/LODS/CMPS, RDI for MOVS/STOS/CMPS/SCAS) are written as 32-bit values: their upper halves become 0 (SDM vol. 1 §3.4.1.1 32-bit operands zero-extend; vol. 2 REP: the count and index registers are ECX/ESI/EDI with 32-bit addressing); measured on Intel Xeon',
    amd: 'nothing is written: RCX, RSI and RDI keep their upper halves (APM vol. 3 REP: "if rCX = 0 no iteration"); measured on AMD EPYC',
    engineValue: (host, ctx) => {
      const op = /(movs|stos|lods|cmps|scas)/.exec(ctx.body ?? '')?.[1] ?? '';
      const regs = host.regs.slice();
      const low = (i: number) => (regs[i] &= 0xffffffffn);
      low(1);
      if (op === 'movs' || op === 'lods' || op === 'cmps') low(6);
      if (op === 'movs' || op === 'stos' || op === 'cmps' || op === 'scas') low(7);
      return { ...host, regs };
    },
  },
  'rep-cmps-fault-flags': {
    id: 'rep-cmps-fault-flags',
    what: 'REPE/REPNE CMPS/SCAS that faults (#PF) after completing some iterations: RFLAGS at the fault',
    intel:
      "the arithmetic flags are the instruction's input flags (the fault is reported with RCX/RSI/RDI at the faulting iteration but the flags of no iteration) (SDM vol. 2 REP: the instruction is restartable; measured on Intel Xeon)",
    amd: "the flags of the last completed iteration's comparison (APM vol. 3 REP; measured on AMD EPYC)",
    engineValue: (host, ctx) => ({ ...host, rflags: (host.rflags & ~0x8d5) | (ctx.input.rflags & 0x8d5) }),
  },
  'wide-pf-cr2': {
    id: 'wide-pf-cr2',
    what: 'CR2 of a #PF raised by a 512-byte FXSAVE/FXRSTOR (and XSAVE/XRSTOR) area on a not-present page',
    intel:
      'CR2 = the linear address that caused the fault (SDM vol. 3 §4.7 and §6.15 "Interrupt 14"); for these wide operands the engine reports the lowest not-present byte of the area (not verified on Intel hardware: a failure on an Intel host means this row needs the measured value)',
    amd: 'CR2 = the LAST byte of the 512-byte operand, even when the whole area is on the not-present page (measured on AMD EPYC; APM vol. 2 §8.4.2 does not specify it for multi-byte operands)',
    engineValue: (host, ctx) =>
      host.kind === 'signal' && ctx.cr2 !== undefined ? { ...host, addr: ctx.cr2 } : host,
  },
  'rcp-rsqrt-approx': {
    id: 'rcp-rsqrt-approx',
    what: 'RCPPS/RCPSS/RSQRTPS/RSQRTSS results (approximate reciprocal / reciprocal square root) of normal operands',
    intel:
      'implementation-specific bits within |relative error| <= 1.5 * 2^-12; exactly defined: ±0 and denormal operands (treated as ±0) give ±inf, ±inf gives ±0 (RCP) / +0 (RSQRT), NaN operands are returned quietened, RSQRT of a negative nonzero operand is the QNaN indefinite; RCP results are flushed to ±0 when tiny: |x| <= 1.11111111110100000000000B * 2^125 never gives a tiny result, |x| >= 1.00000000000110000000001B * 2^126 always does, in between either; no MXCSR flag, no exception, MXCSR.RC/DAZ/FTZ ignored (SDM vol. 2 RCPPS, RCPSS, RSQRTPS, RSQRTSS); the bits differ between Intel generations too',
    amd: 'other implementation-specific bits within the same bound |relative error| <= 1.5 * 2^-12 (APM vol. 4 RCPPS, RSQRTPS: "the maximum relative error is less than or equal to 1.5 * 2^-12"); the exactly defined cases as Intel (measured on AMD EPYC, which also flushes RCP(2^126) to 0, inside the implementation-dependent range)',
    engineValue: (host, ctx) => {
      // The exactly defined lanes take Intel's documented bits; the others stay the host's and are
      // checked against the bound (`rcpRsqrtCheck`) on every host, never bit for bit.
      const o = rcpRsqrtOperands(ctx);
      if (!o || host.kind !== 'ok') return host;
      return withFpu(host, { ...ctx, fxsaveAt: undefined }, (img) => {
        o.src.forEach((s, k) => {
          const v = rcpRsqrtDocumented(o.op, s);
          if (v !== null) wrLE(img, 160 + 16 * o.dst + 4 * k, 4, BigInt(v >>> 0));
        });
      });
    },
  },
  'xinuse-after-load': {
    id: 'xinuse-after-load',
    what: 'XSTATE_BV written by XSAVE (XINUSE) for x87/SSE components that XRSTOR loaded (XSTATE_BV[i] = 1) with their initial values (FCW 037FH, empty tags, zero registers; XMM registers 0)',
    intel:
      'XINUSE[i] = 1: XRSTOR\'s operation sets XINUSE[i] := 1 for every component it loads, so XSAVE writes XSTATE_BV[i] = 1 (SDM vol. 1 §13.8.1 and vol. 2 XRSTOR "Operation"; §13.6: a component in its initial configuration may have XINUSE[i] = 1)',
    amd: 'XSTATE_BV[i] = 0: the loaded values are recognised as the initial configuration (APM vol. 2 §11.5.4 "XSAVE/XRSTOR" leaves XINUSE tracking to the implementation; measured on AMD EPYC)',
    engineValue: (host, ctx) => {
      // the case stores one XSAVE image (`xsaveAt[0]`) with RFBM = EAX & 3
      const at = ctx.xsaveAt?.[0]?.at;
      if (host.kind !== 'ok' || at === undefined) return host;
      const rfbm = Number(ctx.input.regs[0] & 3n);
      const memDiff = new Map(host.memDiff);
      const cur = memDiff.get(at + 512) ?? ctx.initial?.[at + 512] ?? 0;
      const want = cur | rfbm;
      if (ctx.initial && ctx.initial[at + 512] === want) memDiff.delete(at + 512);
      else memDiff.set(at + 512, want);
      return { ...host, memDiff };
    },
  },
  'x87-error-pointers': {
    id: 'x87-error-pointers',
    what: 'FOP, FIP and FDP in FXSAVE/XSAVE images when no unmasked x87 exception is pending (FSW.ES = 0)',
    intel:
      'saved from the last non-control x87 instruction (or as FXRSTOR/XRSTOR loaded them) (SDM vol. 1 §8.1.8, §8.1.9; vol. 2 FXSAVE)',
    amd: 'FXSAVE/FXSAVE64 store FOP, FIP and FDP as 0 when FSW.ES = 0, even with CPUID Fn8000_0008 EBX[XSaveErPtr] (APM vol. 4 FXSAVE: "the x87 pointers are only saved if an exception is pending"; seen on AMD EPYC)',
    everyFpuCase: true,
    engineValue: (host, ctx) =>
      withFpu(host, ctx, (img) => {
        if (img[2] & 0x80) return; // ES set: both vendors save the pointers
        const inp = ctx.input.fpu;
        const p = ctx.x87Pointers ?? {
          fop: inp ? inp[6] | (inp[7] << 8) : 0,
          fip: inp ? (ctx.bitness === 64 ? rdLE(inp, 8, 8) : rdLE(inp, 8, 4)) : 0n,
          fdp: inp ? (ctx.bitness === 64 ? rdLE(inp, 16, 8) : rdLE(inp, 16, 4)) : 0n,
        };
        wrLE(img, 6, 2, BigInt(p.fop & 0x7ff));
        wrLE(img, 8, ctx.bitness === 64 ? 8 : 4, p.fip);
        wrLE(img, 16, ctx.bitness === 64 ? 8 : 4, p.fdp);
      }),
  },
};

/**
 * The result the engine must produce for a case: `host` itself when the host
 * is the engine's vendor; otherwise `host` with every applicable row's
 * engine-vendor value (rows in `tags`, plus the `everyFpuCase` rows when the
 * case has an FXSAVE image).
 * @throws Error for an unknown row id (a typo in a tag).
 */
export function engineExpectation(host: NativeOutcome, ctx: RowContext, tags: string[] = []): NativeOutcome {
  for (const t of tags) if (!VENDOR_ROWS[t]) throw new Error(`vendor table: no row ${t}`);
  if (hostIsEngineVendor()) return host;
  let want = host;
  for (const row of Object.values(VENDOR_ROWS)) {
    if (tags.includes(row.id) || (row.everyFpuCase && ctx.input.fpu)) want = row.engineValue(want, ctx);
  }
  return want;
}

/** MXCSR of an FXSAVE image (bytes 24-27). */
export function imageMxcsr(img: Uint8Array): number {
  return rd32(img, 24);
}

/** The approximate operations of the `rcp-rsqrt-approx` row. */
export type ApproxOp = 'rcp' | 'rsqrt';

/** The SDM's bound on the relative error of RCPPS/RSQRTPS results (SDM vol. 2 RCPPS, RSQRTPS). */
export const RCP_RSQRT_BOUND = 1.5 * 2 ** -12;

function f32Value(b: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, b >>> 0);
  return dv.getFloat32(0);
}

/** RCP operands at and above this magnitude (1.00000000000110000000001B * 2^126) always give a tiny result, flushed to ±0. */
const RCP_ALWAYS_TINY = 0x7e800c01;
/** RCP operands at and below this magnitude (1.11111111110100000000000B * 2^125) never give a tiny result. */
const RCP_NEVER_TINY = 0x7e7fe800;

/**
 * The result bits the SDM defines exactly for RCP/RSQRT of binary32 operand
 * bits `s` (zeros, denormals as zeros, infinities, NaNs, negative RSQRT
 * operands, RCP operands whose result is always tiny), or null when only the
 * bound is defined (SDM vol. 2 RCPPS, RSQRTPS).
 */
export function rcpRsqrtDocumented(op: ApproxOp, s: number): number | null {
  s >>>= 0;
  const sign = s & 0x80000000;
  const mag = s & 0x7fffffff;
  if (mag > 0x7f800000) return (s | 0x400000) >>> 0;
  if (mag < 0x00800000) return (sign | 0x7f800000) >>> 0;
  if (op === 'rsqrt' && sign) return 0xffc00000;
  if (mag === 0x7f800000) return sign;
  if (op === 'rcp' && mag >= RCP_ALWAYS_TINY) return sign;
  return null;
}

/**
 * Checks an RCP/RSQRT result `r` for an operand `s` whose result is not
 * exactly defined (`rcpRsqrtDocumented` null): relative error against the
 * exact value <= `RCP_RSQRT_BOUND`, or (RCP operands between the never-tiny
 * and always-tiny limits) ±0 of the operand's sign.
 * @returns null when it holds, else a description.
 */
export function rcpRsqrtCheck(op: ApproxOp, s: number, r: number): string | null {
  const x = f32Value(s);
  const exact = op === 'rcp' ? 1 / x : 1 / Math.sqrt(x);
  const got = f32Value(r);
  if (op === 'rcp' && (s & 0x7fffffff) > RCP_NEVER_TINY && r >>> 0 === (s & 0x80000000) >>> 0) return null;
  const rel = Math.abs(got - exact) / Math.abs(exact);
  if (rel <= RCP_RSQRT_BOUND) return null;
  return `${op}(0x${(s >>> 0).toString(16)} = ${x}) = 0x${(r >>> 0).toString(16)} (${got}): relative error ${rel} > 1.5 * 2^-12`;
}

/**
 * The operands of an RCP/RSQRT case from its body (`rcpps|rcpss|rsqrtps|rsqrtss
 * <%xmmN | absolute address>, %xmmD`), its input image and its scratch fill.
 * @returns null for other bodies.
 */
export function rcpRsqrtOperands(ctx: RowContext): { op: ApproxOp; dst: number; src: number[] } | null {
  const m = /\b(rcp|rsqrt)(ps|ss)\s+(?:%xmm(\d+)|(0x[0-9a-f]+)),\s*%xmm(\d+)/.exec(ctx.body ?? '');
  if (!m || !ctx.input.fpu) return null;
  const n = m[2] === 'ps' ? 4 : 1;
  const src: number[] = [];
  if (m[3] !== undefined) {
    for (let k = 0; k < n; k++) src.push(rd32(ctx.input.fpu, 160 + 16 * Number(m[3]) + 4 * k));
  } else {
    const mem = ctx.initial ?? scratchInit(ctx.input.memSeed, ctx.input.memPatch);
    const off = Number(m[4]) - SCRATCH_BASE;
    for (let k = 0; k < n; k++) src.push(rd32(mem, off + 4 * k));
  }
  return { op: m[1] as ApproxOp, dst: Number(m[5]), src };
}
