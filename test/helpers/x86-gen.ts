/**
 * Generator of integer-instruction test cases for the CPU differential tests
 * (host CPU vs. engine). Each case is a short GNU as (AT&T) body plus the
 * register, RFLAGS and scratch-memory inputs it runs with; see
 * `native-harness.ts` for how the bodies run on the host.
 *
 * Coverage: every flag-affecting integer class at every operand width, in
 * register, memory and immediate forms, with edge values (0, 1, -1, sign
 * boundaries, 64-bit boundaries) and seeded pseudo-random values, and with
 * the initial CF/DF (and the other arithmetic flags) varied. Deterministic:
 * the same (bitness, count, seed) gives the same cases.
 *
 * Flags the Intel SDM leaves undefined for an instruction are listed in ONE
 * table, `UNDEFINED`, and only those (plus a destination the SDM leaves
 * undefined, e.g. BSF with a zero source) are excluded from comparison.
 */
import { GS_BASE64, SCRATCH_BASE, SCRATCH_SIZE, UNMAPPED_PAGES, type Bitness } from './native-harness';

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const DF = 0x400;
export const OF = 0x800;
/** The six arithmetic flags. */
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** RFLAGS bits compared between host and engine (before removing undefined ones). */
export const COMPARED_FLAGS = ARITH | DF;

export type Width = 8 | 16 | 32 | 64;

/** Facts about one case that decide which results the SDM leaves undefined. */
export interface UndefContext {
  width: Width;
  /** Shift/rotate count after masking to 5 (or 6 for 64-bit) bits. */
  count?: number;
  /** Source operand is zero (BSF/BSR). */
  srcZero?: boolean;
  /** Class of the instruction that produced the flags (lazy-flag sequences). */
  producer?: string;
}

/** Result of an `UNDEFINED` rule: flags not compared, and whether the destination is undefined. */
export interface UndefResult {
  flags: number;
  dest?: boolean;
}

type UndefRule = (c: UndefContext) => UndefResult;
const none: UndefRule = () => ({ flags: 0 });
const fixed =
  (flags: number): UndefRule =>
  () => ({ flags });
/** SHL/SHR/SAR: SDM vol. 2B "SAL/SAR/SHL/SHR - Shift", Flags Affected. */
const shiftRule =
  (cfUndefAtWidth: boolean): UndefRule =>
  ({ width, count = 0 }) => {
    if (count === 0) return { flags: 0 };
    let flags = AF | (count === 1 ? 0 : OF);
    if (cfUndefAtWidth && count >= width) flags |= CF;
    return { flags };
  };
/** ROL/ROR/RCL/RCR: SDM vol. 2B "RCL/RCR/ROL/ROR - Rotate": OF defined for 1-bit rotates only. */
const rotateRule: UndefRule = ({ count = 0 }) => ({ flags: count === 0 || count === 1 ? 0 : OF });
/** SHLD/SHRD: SDM vol. 2B: AF undefined when count != 0, OF when count > 1; count > size: all undefined. */
const doubleShiftRule: UndefRule = ({ width, count = 0 }) => {
  if (count === 0) return { flags: 0 };
  if (count > width) return { flags: ARITH, dest: true };
  return { flags: AF | (count === 1 ? 0 : OF) };
};

/**
 * THE table of results the Intel SDM (vol. 2, each instruction's "Flags
 * Affected") leaves undefined, per instruction class. Everything not listed
 * here is compared. Classes with no undefined flags are listed as `none` so
 * the table doubles as the list of classes.
 */
export const UNDEFINED: Record<string, UndefRule> = {
  add: none,
  adc: none,
  sub: none,
  sbb: none,
  cmp: none,
  and: fixed(AF),
  or: fixed(AF),
  xor: fixed(AF),
  test: fixed(AF),
  inc: none,
  dec: none,
  neg: none,
  not: none,
  shl: shiftRule(true),
  shr: shiftRule(true),
  sar: shiftRule(false),
  rol: rotateRule,
  ror: rotateRule,
  rcl: rotateRule,
  rcr: rotateRule,
  shld: doubleShiftRule,
  shrd: doubleShiftRule,
  mul: fixed(SF | ZF | AF | PF),
  imul: fixed(SF | ZF | AF | PF),
  imul2: fixed(SF | ZF | AF | PF),
  imul3: fixed(SF | ZF | AF | PF),
  div: fixed(ARITH),
  idiv: fixed(ARITH),
  /** #DE cases: the host must fault, the engine must raise #DE with state unchanged. */
  divfault: none,
  bt: fixed(OF | SF | AF | PF),
  bts: fixed(OF | SF | AF | PF),
  btr: fixed(OF | SF | AF | PF),
  btc: fixed(OF | SF | AF | PF),
  bsf: ({ srcZero }) => ({ flags: CF | OF | SF | AF | PF, dest: !!srcZero }),
  bsr: ({ srcZero }) => ({ flags: CF | OF | SF | AF | PF, dest: !!srcZero }),
  lzcnt: fixed(OF | SF | PF | AF),
  tzcnt: fixed(OF | SF | PF | AF),
  popcnt: none,
  bswap: none,
  movzx: none,
  movsx: none,
  movsxd: none,
  cmov: none,
  setcc: none,
  cvt: none,
  xadd: none,
  cmpxchg: none,
  /** CMPXCHG8B/16B: only ZF is written; the others are unchanged (defined). */
  cmpxchg8b: none,
  cmpxchg16b: none,
  xchg: none,
  lea: none,
  movs: none,
  stos: none,
  lods: none,
  cmps: none,
  scas: none,
  lahf: none,
  sahf: none,
  /** `pushf; pop r; mov $0,-n(sp); and $0xcd5, r` */
  pushf: fixed(AF),
  popf: none,
  adcchain: none,
  /** Flag producer then SETcc/CMOVcc/Jcc/ADC/SBB consumers: the producer's rule applies. */
  lazycond: (c) => UNDEFINED[c.producer ?? 'add'](c),
  /** LOOP/LOOPE/LOOPNE/JrCXZ: no flags written. */
  loop: none,
  /** CLC/STC/CMC/CLD/STD. */
  flagop: none,
  /**
   * Accesses that run into a not-present page (REP string ops part-way,
   * page-split RMW/stores/loads, PUSH/POP): host SIGSEGV vs engine #PF, with
   * registers, flags and memory at the fault.
   */
  pagefault: none,
  /** PUSH/POP (incl. RSP-relative memory operands), ENTER/LEAVE, CALL/RET, PUSHA/POPA: no flags. */
  stack: none,
  /** Self-modifying code: an instruction executed, then rewritten, then executed again after a jump. */
  smc: none,
  /** Segment overrides in 64-bit mode: GS adds its base, ES/CS/SS/DS are ignored, LEA ignores all. */
  segbase: none,
  daa: fixed(OF),
  das: fixed(OF),
  aaa: fixed(OF | SF | ZF | PF),
  aas: fixed(OF | SF | ZF | PF),
  aam: fixed(OF | AF | CF),
  aad: fixed(OF | AF | CF),
};

/** One generated case. */
export interface DiffCase {
  /** Unique, readable: class.width.form#n */
  id: string;
  /** Key into `UNDEFINED`. */
  cls: string;
  width: Width;
  form: string;
  /** GNU as AT&T source of the case body. */
  body: string;
  /** Initial GPRs (16 for 64-bit, 8 for 32-bit). */
  regs: bigint[];
  /** Initial RFLAGS (bit 1 set, arithmetic flags and DF). */
  rflags: number;
  memSeed: number;
  memPatch: Array<[number, number]>;
  /** Flags excluded from comparison (from `UNDEFINED`). */
  undefFlags: number;
  /** Registers (bit i = register i) excluded from comparison. */
  undefRegs: number;
  /** The host is expected to fault (#DE cases). */
  expectFault?: boolean;
  /** Rows of test/helpers/vendor-table.ts `VENDOR_ROWS` (Intel/AMD differences) that apply to this case. */
  vendorRows?: string[];
}

/** Seeded PRNG (xorshift128+ on 32-bit lanes; deterministic, no Math.random). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = seed | 0 || 0x1234567;
    this.b = 0x9e3779b9 | 0;
    this.c = 0x7f4a7c15 ^ seed;
    this.d = 0x6a09e667 | 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.u32() % n;
  }
  bool(p = 0.5): boolean {
    return this.u32() / 0x100000000 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const M64 = (1n << 64n) - 1n;
export function maskOf(w: Width): bigint {
  return (1n << BigInt(w)) - 1n;
}
/** Sign-extends the low `w` bits of v to a BigInt. */
export function sext(v: bigint, w: number): bigint {
  const m = (1n << BigInt(w)) - 1n;
  v &= m;
  return v & (1n << BigInt(w - 1)) ? v - (1n << BigInt(w)) : v;
}

/** Edge values of a `w`-bit operand (unsigned). */
function edges(w: Width): bigint[] {
  const m = maskOf(w);
  const s = 1n << BigInt(w - 1);
  const out = [0n, 1n, 2n, m, m - 1n, s, s - 1n, s + 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn];
  out.push(0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n);
  return [...new Set(out.map((v) => v & m))];
}

/** A value of `w` bits: an edge value, a small value, or random. */
function value(rng: Rng, w: Width): bigint {
  const r = rng.int(10);
  if (r < 4) return rng.pick(edges(w));
  if (r < 5) return BigInt(rng.int(16)) & maskOf(w);
  if (r < 6) return 1n << BigInt(rng.int(w));
  return rng.u64() & maskOf(w);
}

/** A whole-register value (random upper bits, sometimes zero). */
function regValue(rng: Rng, bitness: Bitness): bigint {
  const v = rng.bool(0.2) ? value(rng, 64) : rng.u64();
  return bitness === 64 ? v : v & 0xffffffffn;
}

const R64 = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];
const R32 = [
  'eax',
  'ecx',
  'edx',
  'ebx',
  'esp',
  'ebp',
  'esi',
  'edi',
  'r8d',
  'r9d',
  'r10d',
  'r11d',
  'r12d',
  'r13d',
  'r14d',
  'r15d',
];
const R16 = [
  'ax',
  'cx',
  'dx',
  'bx',
  'sp',
  'bp',
  'si',
  'di',
  'r8w',
  'r9w',
  'r10w',
  'r11w',
  'r12w',
  'r13w',
  'r14w',
  'r15w',
];
const R8 = [
  'al',
  'cl',
  'dl',
  'bl',
  'spl',
  'bpl',
  'sil',
  'dil',
  'r8b',
  'r9b',
  'r10b',
  'r11b',
  'r12b',
  'r13b',
  'r14b',
  'r15b',
];
const R8H = ['ah', 'ch', 'dh', 'bh'];

/** A register operand: GPR index and, for AH..BH, bit offset 8. */
interface RegOp {
  idx: number;
  name: string;
  shift: number;
}

export const SUFFIX: Record<Width, string> = { 8: 'b', 16: 'w', 32: 'l', 64: 'q' };

/** Per-case builder: holds registers, memory patches and the registers already claimed. */
class Builder {
  regs: bigint[];
  used = new Set<number>();
  patch: Array<[number, number]> = [];
  undefRegs = 0;
  /** 8-bit register set chosen for this case: 'legacy' (AH..BH allowed, no REX regs) or 'rex'. */
  byteSet: 'legacy' | 'rex';
  constructor(
    readonly rng: Rng,
    readonly bitness: Bitness,
  ) {
    const n = bitness === 64 ? 16 : 8;
    this.regs = Array.from({ length: n }, () => regValue(rng, bitness));
    this.byteSet = bitness === 32 || rng.bool() ? 'legacy' : 'rex';
  }
  get nregs(): number {
    return this.bitness === 64 ? 16 : 8;
  }
  /** Claims register `idx` (so memory addressing and other operands avoid it). */
  claim(idx: number): void {
    this.used.add(idx);
  }
  /** Picks an unclaimed register operand of width w; `avoid` lists GPR indices not to use. */
  reg(w: Width, avoid: number[] = []): RegOp {
    for (let tries = 0; tries < 100; tries++) {
      let idx: number;
      let shift = 0;
      let name: string;
      if (w === 8 && this.byteSet === 'legacy') {
        const k = this.rng.int(8);
        if (k < 4) {
          idx = k;
          name = R8[k];
        } else {
          idx = k - 4;
          shift = 8;
          name = R8H[k - 4];
        }
      } else {
        // the legacy byte set (AH..BH usable) means no REX prefix: only the first eight registers
        idx = this.rng.int(this.byteSet === 'legacy' ? 8 : this.nregs);
        name = (w === 64 ? R64 : w === 32 ? R32 : w === 16 ? R16 : R8)[idx];
      }
      if (this.used.has(idx) || avoid.includes(idx)) continue;
      this.claim(idx);
      return { idx, name: '%' + name, shift };
    }
    throw new Error('generator: no free register');
  }
  /** A fixed register operand (e.g. the accumulator), claimed. */
  fixedReg(idx: number, w: Width, shift = 0): RegOp {
    this.claim(idx);
    const name = shift ? R8H[idx] : (w === 64 ? R64 : w === 32 ? R32 : w === 16 ? R16 : R8)[idx];
    return { idx, name: '%' + name, shift };
  }
  /** Writes the low `w` bits of v into a register operand, keeping the other bits. */
  set(op: RegOp, w: Width, v: bigint): void {
    const m = maskOf(w) << BigInt(op.shift);
    const full = this.bitness === 64 ? M64 : 0xffffffffn;
    this.regs[op.idx] = ((this.regs[op.idx] & ~m) | ((v << BigInt(op.shift)) & m)) & full;
  }
  setReg(idx: number, v: bigint): void {
    this.regs[idx] = v & (this.bitness === 64 ? M64 : 0xffffffffn);
  }
  /** Stores `bytes` little-endian bytes of v at scratch offset `off`. */
  poke(off: number, v: bigint, bytes: number): void {
    for (let i = 0; i < bytes; i++) this.patch.push([off + i, Number((v >> BigInt(8 * i)) & 0xffn)]);
  }
  /**
   * A memory operand addressing scratch offset around `near` (default: the
   * middle): absolute, base, base+disp, base+index*scale+disp or
   * index*scale+disp. Claims the registers used. Returns the AT&T text and
   * the scratch offset addressed.
   */
  mem(near = 0x800, spread = 0x200, align = 1): { text: string; off: number } {
    const off = (near - spread + this.rng.int(2 * spread)) & ~(align - 1);
    const addr = SCRATCH_BASE + off;
    const form = this.rng.int(5);
    const free = (avoidSp: boolean): number | undefined => {
      const c: number[] = [];
      const n = this.byteSet === 'legacy' ? 8 : this.nregs;
      for (let i = 0; i < n; i++) if (!this.used.has(i) && !(avoidSp && i === 4)) c.push(i);
      return c.length ? this.rng.pick(c) : undefined;
    };
    const an = this.bitness === 64 ? R64 : R32;
    if (form === 0) return { text: '0x' + addr.toString(16), off };
    const base = free(false);
    if (base === undefined) return { text: '0x' + addr.toString(16), off };
    this.claim(base);
    if (form === 1) {
      this.setReg(base, BigInt(addr));
      return { text: `(%${an[base]})`, off };
    }
    const disp = this.rng.bool() ? this.rng.int(256) - 128 : this.rng.int(0x2000) - 0x1000;
    if (form === 2) {
      this.setReg(base, BigInt(addr - disp));
      return { text: `${disp}(%${an[base]})`, off };
    }
    const index = free(true);
    if (index === undefined) {
      this.setReg(base, BigInt(addr - disp));
      return { text: `${disp}(%${an[base]})`, off };
    }
    this.claim(index);
    const scale = this.rng.pick([1, 2, 4, 8]);
    const iv = this.rng.int(64) - 16;
    this.setReg(index, BigInt(iv));
    if (form === 3) {
      this.setReg(base, BigInt(addr - disp - iv * scale));
      return { text: `${disp}(%${an[base]},%${an[index]},${scale})`, off };
    }
    // no base: index*scale + disp32
    this.used.delete(base);
    const d2 = addr - iv * scale;
    return { text: `${d2}(,%${an[index]},${scale})`, off };
  }
  /** Random arithmetic flags, DF as given (or random). */
  flags(df?: boolean): number {
    let f = 2;
    for (const b of [CF, PF, AF, ZF, SF, OF]) if (this.rng.bool()) f |= b;
    if (df ?? this.rng.bool(0.25)) f |= DF;
    return f;
  }
}

/** Shape returned by a template before ids and undefined masks are attached. */
interface Made {
  body: string;
  form: string;
  ctx?: Partial<UndefContext>;
  flags?: number;
  expectFault?: boolean;
  /** Vendor-table rows of the case (see `DiffCase.vendorRows`). */
  vendorRows?: string[];
}

interface Template {
  cls: string;
  width: Width;
  /** Only for this bitness (default both). */
  only?: Bitness;
  /** Feature the host and engine must both have (see `generateCases` `features`). */
  feature?: string;
  /** Slots in the round robin (default 1): more cases for templates with many interesting inputs. */
  weight?: number;
  make(b: Builder): Made;
}

/** Immediate of an instruction of width w (64-bit: sign-extended imm32). */
function imm(rng: Rng, w: Width): bigint {
  if (w === 64) return sext(value(rng, 32), 32);
  if (rng.bool(0.3)) return sext(BigInt(rng.int(256)), 8);
  return sext(value(rng, w), w);
}
function immText(v: bigint): string {
  return '$' + v.toString();
}

const ALU = ['add', 'adc', 'sub', 'sbb', 'and', 'or', 'xor', 'cmp'];
const SHIFTS = ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr'];
const CONDS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

function widthsFor(bitness: Bitness, ws: Width[]): Width[] {
  return ws.filter((w) => w !== 64 || bitness === 64);
}

/** Builds the template list for `bitness`. */
function templates(bitness: Bitness): Template[] {
  const T: Template[] = [];
  const W = widthsFor(bitness, [8, 16, 32, 64]);
  const W16 = widthsFor(bitness, [16, 32, 64]);
  const lockable = (b: Builder) => (b.rng.bool(0.2) ? 'lock ' : '');

  // Binary ALU.
  for (const op of ALU)
    for (const w of W)
      for (const form of ['rr', 'rm', 'mr', 'ri', 'mi']) {
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            const dst = form[0] === 'r' ? b.reg(w) : undefined;
            if (dst) b.set(dst, w, value(b.rng, w));
            if (form === 'rr') {
              const src = b.rng.bool(0.1) ? dst! : b.reg(w);
              if (src !== dst) b.set(src, w, value(b.rng, w));
              return { form, body: `${op}${s} ${src.name}, ${dst!.name}` };
            }
            if (form === 'ri') return { form, body: `${op}${s} ${immText(imm(b.rng, w))}, ${dst!.name}` };
            const m = b.mem();
            b.poke(m.off, value(b.rng, w), w / 8);
            if (form === 'rm') return { form, body: `${op}${s} ${m.text}, ${dst!.name}` };
            const lock = op === 'cmp' ? '' : lockable(b);
            if (form === 'mr') {
              const src = b.reg(w);
              b.set(src, w, value(b.rng, w));
              return { form, body: `${lock}${op}${s} ${src.name}, ${m.text}` };
            }
            return { form, body: `${lock}${op}${s} ${immText(imm(b.rng, w))}, ${m.text}` };
          },
        });
      }
  for (const w of W)
    for (const form of ['rr', 'mr', 'ri', 'mi'])
      T.push({
        cls: 'test',
        width: w,
        make(b) {
          const s = SUFFIX[w];
          const a = form[0] === 'r' ? b.reg(w) : undefined;
          if (a) b.set(a, w, value(b.rng, w));
          const m = form[0] === 'm' ? b.mem() : undefined;
          if (m) b.poke(m.off, value(b.rng, w), w / 8);
          const dst = a ? a.name : m!.text;
          if (form[1] === 'i') return { form, body: `test${s} ${immText(imm(b.rng, w))}, ${dst}` };
          const src = form === 'rr' && b.rng.bool(0.2) ? a! : b.reg(w);
          if (src !== a) b.set(src, w, value(b.rng, w));
          return { form, body: `test${s} ${src.name}, ${dst}` };
        },
      });

  // Unary.
  for (const op of ['inc', 'dec', 'neg', 'not'])
    for (const w of W)
      for (const form of ['r', 'm'])
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            if (form === 'r') {
              const r = b.reg(w);
              b.set(r, w, value(b.rng, w));
              return { form, body: `${op}${s} ${r.name}` };
            }
            const m = b.mem();
            b.poke(m.off, value(b.rng, w), w / 8);
            return { form, body: `${lockable(b)}${op}${s} ${m.text}` };
          },
        });

  // Shifts and rotates: by 1, by CL, by imm; register and memory destination.
  const countPool = (w: Width) => [
    0,
    1,
    2,
    3,
    w - 1,
    w,
    w + 1,
    7,
    8,
    9,
    15,
    16,
    17,
    31,
    32,
    33,
    63,
    64,
    65,
    0xff,
    0x80,
  ];
  for (const op of SHIFTS)
    for (const w of W)
      for (const form of ['1r', '1m', 'clr', 'clm', 'ir', 'im'])
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            let count = 1;
            let countText = '';
            if (form.startsWith('cl')) {
              const cl = b.fixedReg(1, 8);
              count = b.rng.bool(0.7) ? b.rng.pick(countPool(w)) & 0xff : b.rng.int(256);
              b.set(cl, 8, BigInt(count));
              countText = '%cl, ';
            } else if (form.startsWith('i')) {
              // $1 is assembled as the D1 form by gas; other counts give C1 ib.
              count = b.rng.bool(0.7) ? b.rng.pick(countPool(w)) & 0xff : b.rng.int(256);
              countText = `$${count}, `;
            }
            const masked = count & (w === 64 ? 63 : 31);
            let dst: string;
            if (form.endsWith('r')) {
              const r = b.reg(w);
              b.set(r, w, value(b.rng, w));
              dst = r.name;
              if (form === 'ir' && b.rng.bool(0.2)) {
                // C0/C1 /n ib with an immediate count of 1 (gas would pick D0/D1): raw bytes
                const ext = { rol: 0, ror: 1, rcl: 2, rcr: 3, shl: 4, shr: 5, sar: 7 }[op]!;
                const rm = r.shift ? r.idx + 4 : r.idx & 7;
                const bytes: number[] = [];
                if (w === 16) bytes.push(0x66);
                const rex = (w === 64 ? 8 : 0) | (r.idx >= 8 ? 1 : 0);
                if (rex || (w === 8 && !r.shift && r.idx >= 4 && bitness === 64)) bytes.push(0x40 | rex);
                bytes.push(w === 8 ? 0xc0 : 0xc1, 0xc0 | (ext << 3) | rm, 1);
                const hex = bytes.map((x) => '0x' + x.toString(16)).join(', ');
                return { form: 'i1', body: `.byte ${hex} # ${op}${s} $1, ${dst}`, ctx: { count: 1 } };
              }
            } else {
              const m = b.mem();
              b.poke(m.off, value(b.rng, w), w / 8);
              dst = m.text;
            }
            return { form, body: `${op}${s} ${countText}${dst}`, ctx: { count: masked } };
          },
        });

  // SHLD/SHRD.
  for (const op of ['shld', 'shrd'])
    for (const w of W16)
      for (const form of ['ir', 'clr', 'im', 'clm'])
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            let count: number;
            const cmask = w === 64 ? 63 : 31;
            do {
              count = b.rng.bool(0.6)
                ? b.rng.pick([0, 1, 2, w - 1, w, 7, 8, 15, 16, 31, 32, 33, 63])
                : b.rng.int(256);
            } while ((count & cmask) > w);
            let countText: string;
            if (form.startsWith('cl')) {
              const cl = b.fixedReg(1, 8);
              b.set(cl, 8, BigInt(count));
              countText = '%cl';
            } else countText = `$${count}`;
            const src = b.reg(w);
            b.set(src, w, value(b.rng, w));
            let dst: string;
            if (form.endsWith('r')) {
              const r = b.reg(w);
              b.set(r, w, value(b.rng, w));
              dst = r.name;
            } else {
              const m = b.mem();
              b.poke(m.off, value(b.rng, w), w / 8);
              dst = m.text;
            }
            return {
              form,
              body: `${op}${s} ${countText}, ${src.name}, ${dst}`,
              ctx: { count: count & cmask },
            };
          },
        });

  // MUL/IMUL one-operand, DIV/IDIV.
  for (const op of ['mul', 'imul'])
    for (const w of W)
      for (const form of ['r', 'm'])
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            const acc = b.fixedReg(0, w);
            b.set(acc, w, value(b.rng, w));
            if (form === 'r') {
              const r = b.rng.bool(0.1) ? acc : b.reg(w, [0]);
              if (r !== acc) b.set(r, w, value(b.rng, w));
              return { form, body: `${op}${s} ${r.name}` };
            }
            const m = b.mem();
            b.poke(m.off, value(b.rng, w), w / 8);
            return { form, body: `${op}${s} ${m.text}` };
          },
        });
  for (const w of W16)
    for (const form of ['rr', 'rm', 'rri', 'rmi'])
      T.push({
        cls: form.length === 2 ? 'imul2' : 'imul3',
        width: w,
        make(b) {
          const s = SUFFIX[w];
          const dst = b.reg(w);
          b.set(dst, w, value(b.rng, w));
          let src: string;
          if (form[1] === 'r') {
            const r = b.rng.bool(0.15) ? dst : b.reg(w);
            if (r !== dst) b.set(r, w, value(b.rng, w));
            src = r.name;
          } else {
            const m = b.mem();
            b.poke(m.off, value(b.rng, w), w / 8);
            src = m.text;
          }
          if (form.length === 2) return { form, body: `imul${s} ${src}, ${dst.name}` };
          return { form, body: `imul${s} ${immText(imm(b.rng, w))}, ${src}, ${dst.name}` };
        },
      });
  for (const op of ['div', 'idiv'])
    for (const w of W)
      for (const form of ['r', 'm', 'de'])
        T.push({
          cls: form === 'de' ? 'divfault' : op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            const signed = op === 'idiv';
            const bw = BigInt(w);
            let divisor: bigint;
            let dividend: bigint; // 2w bits, unsigned representation
            if (form === 'de') {
              const r = b.rng.int(3);
              if (r === 0) {
                divisor = 0n;
                dividend = b.rng.u64() & ((1n << (2n * bw)) - 1n);
              } else if (signed) {
                // quotient out of range: -2^(w-1) / -1, or a large dividend / small divisor
                divisor = r === 1 ? maskOf(w) : 1n + BigInt(b.rng.int(3));
                const n = r === 1 ? -(1n << (bw - 1n)) : (1n << (2n * bw - 2n)) + BigInt(b.rng.int(1000));
                dividend = n & ((1n << (2n * bw)) - 1n);
              } else {
                // high half >= divisor
                divisor = (value(b.rng, w) || 1n) & maskOf(w);
                let hi = divisor + BigInt(b.rng.int(3));
                if (hi > maskOf(w)) hi = maskOf(w);
                dividend = (hi << bw) | (b.rng.u64() & maskOf(w));
              }
            } else if (!signed) {
              divisor = value(b.rng, w) || 1n;
              const q = value(b.rng, w);
              const r = (b.rng.u64() & maskOf(w)) % divisor;
              dividend = q * divisor + r;
              if (dividend >> bw >= divisor) dividend = r; // keep the quotient in range
            } else {
              let d = sext(value(b.rng, w), w);
              if (d === 0n) d = -1n;
              let q = sext(value(b.rng, w), w);
              const lim = 1n << (bw - 1n);
              let r = sext(b.rng.u64(), 64) % (d < 0n ? -d : d);
              let n = q * d;
              if ((n < 0n && r > 0n) || (n > 0n && r < 0n)) r = -r;
              n += r;
              q = n / d; // BigInt division truncates toward zero, like IDIV
              if (q >= lim || q < -lim || n >= 1n << (2n * bw - 1n) || n < -(1n << (2n * bw - 1n))) {
                n = r;
              }
              divisor = d & maskOf(w);
              dividend = n & ((1n << (2n * bw)) - 1n);
            }
            if (w === 8) {
              const ax = b.fixedReg(0, 16);
              b.set(ax, 16, dividend);
            } else {
              const lo = b.fixedReg(0, w);
              const hi = b.fixedReg(2, w);
              b.set(lo, w, dividend & maskOf(w));
              b.set(hi, w, dividend >> bw);
            }
            if (form === 'm') {
              const m = b.mem();
              b.poke(m.off, divisor, w / 8);
              return { form, body: `${op}${s} ${m.text}` };
            }
            const r = b.reg(w, [0, 2]);
            b.set(r, w, divisor);
            return { form, body: `${op}${s} ${r.name}`, expectFault: form === 'de' };
          },
        });

  // Bit tests.
  for (const op of ['bt', 'bts', 'btr', 'btc'])
    for (const w of W16)
      for (const form of ['rr', 'ir', 'rm', 'im'])
        T.push({
          cls: op,
          width: w,
          make(b) {
            const s = SUFFIX[w];
            const lock = op !== 'bt' && form[1] === 'm' ? lockable(b) : '';
            let dst: string;
            let target: RegOp | undefined;
            if (form[1] === 'r') {
              target = b.reg(w);
              b.set(target, w, value(b.rng, w));
              dst = target.name;
            } else {
              const m = b.mem(0x800, 0x40);
              dst = m.text;
            }
            if (form[0] === 'i') {
              const bit = b.rng.bool(0.8) ? b.rng.int(w) : b.rng.int(256);
              return { form, body: `${lock}${op}${s} $${bit}, ${dst}` };
            }
            const off = b.reg(w, target ? [target.idx] : []);
            // Register bit offsets reach +-0x3000 bits from the memory operand (inside the scratch buffer).
            const bitOff = form === 'rr' ? value(b.rng, w) : BigInt(b.rng.int(0x6000) - 0x3000);
            b.set(off, w, bitOff & maskOf(w));
            return { form, body: `${lock}${op}${s} ${off.name}, ${dst}` };
          },
        });

  // Bit scans and counts.
  for (const op of ['bsf', 'bsr', 'lzcnt', 'tzcnt', 'popcnt'])
    for (const w of W16)
      for (const form of ['rr', 'rm'])
        T.push({
          cls: op,
          width: w,
          feature: ['lzcnt', 'tzcnt', 'popcnt'].includes(op) ? op : undefined,
          make(b) {
            const s = SUFFIX[w];
            const dst = b.reg(w);
            const src = b.rng.bool(0.2) ? 0n : value(b.rng, w);
            let srcText: string;
            if (form === 'rr') {
              const r = b.reg(w);
              b.set(r, w, src);
              srcText = r.name;
            } else {
              const m = b.mem();
              b.poke(m.off, src, w / 8);
              srcText = m.text;
            }
            if (op === 'bsf' || op === 'bsr') if (src === 0n) b.undefRegs |= 1 << dst.idx;
            return { form, body: `${op}${s} ${srcText}, ${dst.name}`, ctx: { srcZero: src === 0n } };
          },
        });

  for (const w of widthsFor(bitness, [32, 64]))
    T.push({
      cls: 'bswap',
      weight: 4,
      width: w,
      make(b) {
        const r = b.reg(w);
        return { form: 'r', body: `bswap ${r.name}` };
      },
    });

  // MOVZX/MOVSX/MOVSXD.
  const ext: Array<[string, string, Width, Width]> = [
    ['movzx', 'movzbw', 8, 16],
    ['movzx', 'movzbl', 8, 32],
    ['movzx', 'movzbq', 8, 64],
    ['movzx', 'movzwl', 16, 32],
    ['movzx', 'movzwq', 16, 64],
    ['movsx', 'movsbw', 8, 16],
    ['movsx', 'movsbl', 8, 32],
    ['movsx', 'movsbq', 8, 64],
    ['movsx', 'movswl', 16, 32],
    ['movsx', 'movswq', 16, 64],
    ['movsxd', 'movslq', 32, 64],
  ];
  for (const [cls, mn, sw, dw] of ext) {
    if (dw === 64 && bitness === 32) continue;
    for (const form of ['rr', 'rm'])
      T.push({
        cls,
        width: dw,
        make(b) {
          if (dw === 64) b.byteSet = 'rex';
          const dst = b.reg(dw);
          let src: string;
          if (form === 'rr') {
            const r = b.reg(sw);
            b.set(r, sw, value(b.rng, sw));
            src = r.name;
          } else {
            const m = b.mem();
            b.poke(m.off, value(b.rng, sw), sw / 8);
            src = m.text;
          }
          return { form, body: `${mn} ${src}, ${dst.name}` };
        },
      });
  }

  // CMOVcc / SETcc over all 16 conditions.
  for (const cc of CONDS) {
    for (const w of W16)
      for (const form of ['rr', 'rm'])
        T.push({
          cls: 'cmov',
          width: w,
          make(b) {
            const dst = b.reg(w);
            let src: string;
            if (form === 'rr') {
              const r = b.reg(w);
              src = r.name;
            } else {
              const m = b.mem();
              src = m.text;
            }
            return { form: `${cc}.${form}`, body: `cmov${cc}${SUFFIX[w]} ${src}, ${dst.name}` };
          },
        });
    for (const form of ['r', 'm'])
      T.push({
        cls: 'setcc',
        width: 8,
        make(b) {
          const dst = form === 'r' ? b.reg(8).name : b.mem().text;
          return { form: `${cc}.${form}`, body: `set${cc} ${dst}` };
        },
      });
  }

  // CBW/CWDE/CDQE/CWD/CDQ/CQO.
  const cvt: Array<[string, Width]> = [
    ['cbtw', 16],
    ['cwtl', 32],
    ['cltq', 64],
    ['cwtd', 16],
    ['cltd', 32],
    ['cqto', 64],
  ];
  for (const [mn, w] of cvt) {
    if (w === 64 && bitness === 32) continue;
    T.push({
      cls: 'cvt',
      width: w,
      make(b) {
        const acc = b.fixedReg(0, w);
        b.set(acc, w, value(b.rng, w));
        return { form: mn, body: mn };
      },
    });
  }

  // XADD / CMPXCHG / XCHG.
  for (const w of W) {
    for (const form of ['rr', 'mr'])
      T.push({
        cls: 'xadd',
        width: w,
        make(b) {
          const s = SUFFIX[w];
          const src = b.reg(w);
          b.set(src, w, value(b.rng, w));
          if (form === 'rr') {
            const dst = b.rng.bool(0.1) ? src : b.reg(w);
            if (dst !== src) b.set(dst, w, value(b.rng, w));
            return { form, body: `xadd${s} ${src.name}, ${dst.name}` };
          }
          const m = b.mem();
          b.poke(m.off, value(b.rng, w), w / 8);
          return { form, body: `${lockable(b)}xadd${s} ${src.name}, ${m.text}` };
        },
      });
    for (const form of ['rr', 'mr'])
      T.push({
        cls: 'cmpxchg',
        width: w,
        make(b) {
          const s = SUFFIX[w];
          const acc = b.fixedReg(0, w);
          const src = b.reg(w, [0]);
          const cur = value(b.rng, w);
          b.set(acc, w, b.rng.bool() ? cur : value(b.rng, w));
          b.set(src, w, value(b.rng, w));
          if (form === 'rr') {
            const dst = b.rng.bool(0.1) ? acc : b.reg(w, [0]);
            if (dst !== acc) b.set(dst, w, cur);
            return { form, body: `cmpxchg${s} ${src.name}, ${dst.name}` };
          }
          const m = b.mem();
          b.poke(m.off, cur, w / 8);
          return { form, body: `${lockable(b)}cmpxchg${s} ${src.name}, ${m.text}` };
        },
      });
    for (const form of ['rr', 'mr'])
      T.push({
        cls: 'xchg',
        width: w,
        make(b) {
          const s = SUFFIX[w];
          const a = b.reg(w);
          b.set(a, w, value(b.rng, w));
          if (form === 'rr') {
            const c = b.rng.bool(0.1) ? a : b.reg(w);
            return { form, body: `xchg${s} ${a.name}, ${c.name}` };
          }
          const m = b.mem();
          return { form, body: `xchg${s} ${a.name}, ${m.text}` };
        },
      });
  }

  // CMPXCHG8B / CMPXCHG16B (memory only; 16B needs a 16-byte aligned operand).
  for (const wide of bitness === 64 ? [false, true] : [false])
    T.push({
      cls: wide ? 'cmpxchg16b' : 'cmpxchg8b',
      weight: 4,
      width: 64,
      make(b) {
        const half: Width = wide ? 64 : 32;
        for (const r of [0, 1, 2, 3]) b.claim(r);
        const m = b.mem(0x800, 0x200, wide ? 16 : 1);
        const lo = value(b.rng, half);
        const hi = value(b.rng, half);
        const eq = b.rng.bool();
        b.set(b.fixedReg(0, half), half, eq ? lo : value(b.rng, half));
        b.set(b.fixedReg(2, half), half, eq || b.rng.bool() ? hi : value(b.rng, half));
        b.set(b.fixedReg(3, half), half, value(b.rng, half));
        b.set(b.fixedReg(1, half), half, value(b.rng, half));
        b.poke(m.off, lo, half / 8);
        b.poke(m.off + half / 8, hi, half / 8);
        return {
          form: eq ? 'equal' : 'differ',
          body: `${lockable(b)}${wide ? 'cmpxchg16b' : 'cmpxchg8b'} ${m.text}`,
        };
      },
    });

  // LEA with many addressing forms (no memory access: any register values).
  for (const w of W16)
    for (const form of ['b', 'bd', 'bis', 'bisd', 'isd', 'abs', 'a32', 'rip', 'a16'])
      if (
        !(form === 'rip' && bitness === 32) &&
        !(form === 'a16' && bitness === 64) &&
        !(form === 'a32' && bitness === 32)
      )
        T.push({
          cls: 'lea',
          width: w,
          make(b) {
            const dst = b.reg(w);
            const an = bitness === 64 && form !== 'a32' ? R64 : R32;
            const n = b.nregs;
            const base = b.rng.int(n);
            let index = b.rng.int(n);
            if (index === 4) index = 5;
            const scale = b.rng.pick([1, 2, 4, 8]);
            const disp = b.rng.bool() ? b.rng.int(256) - 128 : Number(sext(BigInt(b.rng.u32()), 32));
            const s = SUFFIX[w];
            let addr: string;
            switch (form) {
              case 'b':
                addr = `(%${an[base]})`;
                break;
              case 'bd':
                addr = `${disp}(%${an[base]})`;
                break;
              case 'bis':
                addr = `(%${an[base]},%${an[index]},${scale})`;
                break;
              case 'bisd':
              case 'a32':
                addr = `${disp}(%${an[base]},%${an[index]},${scale})`;
                break;
              case 'isd':
                addr = `${disp}(,%${an[index]},${scale})`;
                break;
              case 'abs':
                addr = `${disp}`;
                break;
              case 'rip':
                addr = `${disp}(%rip)`;
                break;
              default: {
                // 16-bit addressing (32-bit mode): the eight BX/BP/SI/DI forms plus disp16.
                const f = b.rng.pick([
                  '%bx,%si',
                  '%bx,%di',
                  '%bp,%si',
                  '%bp,%di',
                  '%si',
                  '%di',
                  '%bp',
                  '%bx',
                ]);
                addr = `${disp & 0x7fff}(${f})`;
                return { form, body: `lea${s} ${addr}, ${dst.name}` };
              }
            }
            return { form, body: `lea${s} ${addr}, ${dst.name}` };
          },
        });

  // String instructions on the scratch buffer.
  const strW = W;
  for (const op of ['movs', 'stos', 'lods', 'cmps', 'scas'])
    for (const w of strW)
      for (const rep of ['', 'rep', 'repe', 'repne'])
        for (const dfSet of [false, true]) {
          if ((op === 'cmps' || op === 'scas') !== (rep === 'repe' || rep === 'repne') && rep !== '')
            continue;
          for (const a32 of bitness === 64 ? [false, true] : [false]) {
            if (a32 && rep === '') continue;
            T.push({
              cls: op,
              width: w,
              make(b) {
                const bytes = w / 8;
                const count = rep ? b.rng.pick([0, 1, 2, 3, 5, 8, 13, 16, 20]) : 1;
                const span = count * bytes + 16;
                // source around 0x400, destination around 0xb00 (room for `span` bytes either way)
                let srcOff = 0x300 + b.rng.int(0x200);
                let dstOff = 0xa00 + b.rng.int(0x200);
                if (op === 'movs' && b.rng.bool(0.2))
                  dstOff = srcOff + (dfSet ? -1 : 1) * b.rng.int(2 * bytes + 1);
                if (dfSet) {
                  srcOff = Math.max(srcOff, span);
                  dstOff = Math.max(dstOff, span);
                }
                const hiJunk = () => (a32 ? b.rng.u64() & 0xffffffff00000000n : 0n);
                b.claim(6);
                b.claim(7);
                b.claim(1);
                b.setReg(6, BigInt(SCRATCH_BASE + srcOff) | hiJunk());
                b.setReg(7, BigInt(SCRATCH_BASE + dstOff) | hiJunk());
                const cnt = BigInt(count) | (rep ? hiJunk() : b.regs[1] & ~0xffffffffn);
                b.setReg(1, rep ? cnt : b.regs[1]);
                const acc = b.fixedReg(0, w);
                if (op === 'cmps' || op === 'scas') {
                  // Make the first k elements compare equal (repe runs), or unequal (repne runs).
                  const k = b.rng.int(count + 2);
                  const pattern = value(b.rng, w);
                  if (op === 'scas') b.set(acc, w, pattern);
                  for (let i = 0; i < count + 1; i++) {
                    const eq = rep === 'repe' ? i < k : i >= k;
                    const v = eq
                      ? pattern
                      : pattern ^ (BigInt(1 + b.rng.int(255)) << BigInt(8 * b.rng.int(bytes)));
                    const step = dfSet ? -i * bytes : i * bytes;
                    b.poke(dstOff + step, v, bytes);
                    if (op === 'cmps') b.poke(srcOff + step, pattern, bytes);
                  }
                }
                const sfx = SUFFIX[w];
                const pfx = (a32 ? 'addr32 ' : '') + (rep ? rep + ' ' : '');
                const body = dfSet ? `${pfx}${op}${sfx}` : `${pfx}${op}${sfx}`;
                return {
                  form: `${rep || 'once'}${dfSet ? '.std' : ''}${a32 ? '.a32' : ''}`,
                  body,
                  flags: b.flags(dfSet),
                  ...(a32 && rep && count === 0 ? { vendorRows: ['rep-addr32-count0'] } : {}),
                };
              },
            });
          }
        }

  // LAHF/SAHF, PUSHF/POPF.
  T.push({
    cls: 'lahf',
    weight: 4,
    width: 8,
    make(b) {
      b.claim(0);
      return { form: 'lahf', body: 'lahf' };
    },
  });
  T.push({
    cls: 'sahf',
    weight: 4,
    width: 8,
    make(b) {
      b.claim(0);
      return { form: 'sahf', body: 'sahf' };
    },
  });
  const sp = bitness === 64 ? 'rsp' : 'esp';
  const ax = bitness === 64 ? 'rax' : 'eax';
  const word = bitness === 64 ? 8 : 4;
  const suf = bitness === 64 ? 'q' : 'l';
  T.push({
    cls: 'pushf',
    weight: 4,
    width: bitness,
    make(b) {
      b.claim(4);
      b.setReg(4, BigInt(SCRATCH_BASE + 0x800 - 8 * b.rng.int(16)));
      return {
        form: 'pushf',
        body: `pushf${suf}\n\tpop${suf} %${ax}\n\tmov${suf} $0, -${word}(%${sp})\n\tand${suf} $0xcd5, %${ax}`,
      };
    },
  });
  T.push({
    cls: 'popf',
    weight: 4,
    width: bitness,
    make(b) {
      b.claim(4);
      b.claim(0);
      b.setReg(4, BigInt(SCRATCH_BASE + 0x800 - 8 * b.rng.int(16)));
      b.setReg(0, BigInt((b.rng.u32() & (ARITH | DF)) | 0x202));
      return { form: 'popf', body: `push${suf} %${ax}\n\tpopf${suf}` };
    },
  });

  // ADC/SBB chains (multi-word arithmetic).
  for (const w of W16)
    T.push({
      cls: 'adcchain',
      width: w,
      make(b) {
        const n = 3 + b.rng.int(4);
        const lines: string[] = [];
        for (let i = 0; i < n; i++) {
          const op = i === 0 ? b.rng.pick(['add', 'sub', 'adc', 'sbb']) : b.rng.pick(['adc', 'sbb']);
          const src = b.reg(w);
          b.set(src, w, value(b.rng, w));
          const dst = b.reg(w);
          b.set(dst, w, value(b.rng, w));
          b.used.delete(src.idx);
          b.used.delete(dst.idx);
          lines.push(`${op}${SUFFIX[w]} ${src.name}, ${dst.name}`);
        }
        return { form: `x${n}`, body: lines.join('\n\t') };
      },
    });

  // Lazy flags: a flag producer followed by consumers of its flags in the same block
  // (SETcc, CMOVcc, Jcc over a flag-neutral LEA, ADC/SBB of CF).
  const producers = [
    'add',
    'adc',
    'sub',
    'sbb',
    'cmp',
    'and',
    'or',
    'xor',
    'test',
    'inc',
    'dec',
    'neg',
    'shl',
    'shr',
    'sar',
  ];
  for (const producer of producers)
    for (const w of W)
      T.push({
        cls: 'lazycond',
        width: w,
        weight: 2,
        make(b) {
          const s = SUFFIX[w];
          const dst = b.reg(w);
          b.set(dst, w, value(b.rng, w));
          let prod: string;
          if (['inc', 'dec', 'neg'].includes(producer)) prod = `${producer}${s} ${dst.name}`;
          else if (['shl', 'shr', 'sar'].includes(producer))
            prod = `${producer}${s} ${dst.name}`; // by 1: OF defined
          else {
            const src = b.reg(w);
            b.set(src, w, b.rng.bool(0.3) ? b.regs[dst.idx] >> BigInt(dst.shift) : value(b.rng, w));
            prod = `${producer}${s} ${src.name}, ${dst.name}`;
          }
          const cw: Width = bitness === 64 && b.rng.bool() ? 64 : 32;
          const lines = [prod];
          const n = 1 + b.rng.int(4);
          for (let k = 0; k < n; k++) {
            b.used.clear(); // consumers may reuse any register, including the producer's
            const cc = b.rng.pick(CONDS);
            const kind = b.rng.int(5);
            if (kind === 0) lines.push(`set${cc} ${b.reg(8).name}`);
            else if (kind === 1) {
              const a = b.reg(cw);
              lines.push(`cmov${cc}${SUFFIX[cw]} ${b.reg(cw).name}, ${a.name}`);
            } else if (kind === 2) {
              const r = b.reg(cw);
              lines.push(`j${cc} 1f`, `lea${SUFFIX[cw]} 1(${r.name}), ${r.name}`, '1:');
            } else if (kind === 3)
              lines.push(`${b.rng.pick(['adc', 'sbb'])}${SUFFIX[cw]} $0, ${b.reg(cw).name}`);
            else {
              // consumes CF and writes new flags: the chain continues from this result
              const r = b.reg(cw);
              lines.push(`sbb${SUFFIX[cw]} ${r.name}, ${r.name}`);
            }
          }
          // ADC/SBB consumers write flags: the last writer decides the undefined set, which for
          // them is empty, so only keep the producer's rule when no ADC/SBB ran.
          const wrote = lines.slice(1).some((l) => /^(adc|sbb)/.test(l));
          return {
            form: producer,
            body: lines.join('\n\t'),
            ctx: { producer: wrote ? 'adc' : producer, count: 1 },
          };
        },
      });
  for (const op of ['loop', 'loope', 'loopne', 'jrcxz', 'jecxz'])
    T.push({
      cls: 'loop',
      width: bitness,
      weight: 2,
      make(b) {
        const rc = b.fixedReg(1, bitness === 64 ? 64 : 32);
        const v = b.rng.pick([0n, 1n, 2n, 3n, 0x100000000n, 0x100000001n, 0xffffffffn, 1n << 63n]);
        b.setReg(1, (b.rng.bool(0.7) ? v : b.rng.u64()) | 0n);
        const r = b.reg(32, [1]);
        const mn =
          bitness === 32 && op === 'jrcxz' ? 'jecxz' : bitness === 32 && op === 'jecxz' ? 'jcxz' : op;
        return { form: mn, body: `${mn} 1f\n\tlea 1(${r.name}), ${r.name}\n1:` };
      },
    });
  for (const op of ['clc', 'stc', 'cmc', 'cld', 'std'])
    T.push({
      cls: 'flagop',
      width: 8,
      make() {
        return { form: op, body: op };
      },
    });

  // Self-modifying code (SDM vol. 3 §8.1.3, option 1: store, then jump to the new code). The
  // patched instruction has already run once, so a decoded-code cache must notice the store.
  for (const form of ['imm32', 'opcode', 'modrm'])
    T.push({
      cls: 'smc',
      width: 32,
      make(b) {
        for (const r of [0, 1, 2]) b.claim(r);
        b.setReg(1, 0n);
        const v = b.rng.u32();
        const at = bitness === 64 ? '(%rip)' : '';
        // 1: B8 id (mov $imm32, %eax) - patch the immediate, the opcode (B8 -> BA: mov to %edx) or
        // turn `add %eax, %edx` (01 C2) into `sub %eax, %edx` (29 C2)
        const patch =
          form === 'imm32'
            ? `movl $${v}, 1b+1${at}`
            : form === 'opcode'
              ? `movb $0xba, 1b${at}`
              : `movb $0x29, 2b${at}`;
        return {
          form,
          body: [
            `1:\tmovl $${b.rng.u32()}, %eax`,
            '2:\taddl %eax, %edx',
            '\tincl %ecx',
            `\t${patch}`,
            '\tcmpl $2, %ecx',
            '\tjne 1b',
          ].join('\n'),
        };
      },
    });

  // Segment overrides in 64-bit mode.
  if (bitness === 64)
    for (const form of [
      'gs-rmw',
      'gs-load',
      'gs-store',
      'gs-lea',
      'gs-movs',
      'gs-a32',
      'es-ignored',
      'ss-ignored',
    ])
      T.push({
        cls: 'segbase',
        width: 64,
        make(b) {
          const w: Width = b.rng.pick([8, 16, 32, 64] as Width[]);
          const sx = SUFFIX[w];
          const off = 0x400 + b.rng.int(0x800);
          if (form === 'gs-movs') {
            for (const r of [1, 6, 7]) b.claim(r);
            b.setReg(6, BigInt(SCRATCH_BASE + off - GS_BASE64));
            b.setReg(7, BigInt(SCRATCH_BASE + 0x100 + b.rng.int(0x100)));
            b.setReg(1, BigInt(b.rng.int(12)));
            return { form, body: `rep movs${sx} %gs:(%rsi), %es:(%rdi)`, flags: b.flags(false) };
          }
          const r = b.reg(w);
          b.set(r, w, value(b.rng, w));
          const base = b.reg(64, [4]);
          const disp = b.rng.int(256) - 128;
          const seg = form.startsWith('gs') ? GS_BASE64 : 0;
          const prefix = form.startsWith('gs') ? '%gs:' : form === 'es-ignored' ? '%es:' : '%ss:';
          if (form === 'gs-a32') {
            // 32-bit address: the offset wraps at 4 GiB before the GS base is added
            b.setReg(base.idx, BigInt(SCRATCH_BASE + off - seg - disp) | (b.rng.u64() & 0xffffffff00000000n));
            const e = R32[base.idx];
            return { form, body: `add${sx} ${r.name}, %gs:${disp}(%${e})` };
          }
          b.setReg(base.idx, BigInt(SCRATCH_BASE + off - seg - disp));
          const m = `${prefix}${disp}(${base.name})`;
          const body: Record<string, string> = {
            'gs-rmw': `${b.rng.bool(0.3) ? 'lock ' : ''}add${sx} ${r.name}, ${m}`,
            'gs-load': `mov${sx} ${m}, ${r.name}`,
            'gs-store': `mov${sx} ${r.name}, ${m}`,
            'gs-lea': `leaq ${m}, ${base.name}`,
            'es-ignored': `xor${sx} ${r.name}, ${m}`,
            'ss-ignored': `sub${sx} ${m}, ${r.name}`,
          };
          return { form, body: body[form] };
        },
      });

  // Stack instructions: RSP points into the scratch page.
  {
    const sfx = bitness === 64 ? 'q' : 'l';
    const sp = bitness === 64 ? '%rsp' : '%esp';
    const bp = bitness === 64 ? '%rbp' : '%ebp';
    const ax = bitness === 64 ? '%rax' : '%eax';
    const forms = [
      'push-r',
      'pushw-r',
      'pop-r',
      'popw-r',
      'push-sp',
      'pop-sp',
      'push-imm8',
      'push-imm32',
      'pushw-imm',
      'push-m',
      'push-m-sp',
      'pop-m',
      'pop-m-sp',
      'enter',
      'leave',
      'call',
      'ret-imm',
    ];
    if (bitness === 32) forms.push('pusha', 'popa', 'pushaw', 'popaw');
    for (const form of forms)
      T.push({
        cls: 'stack',
        width: bitness,
        make(b) {
          b.claim(4);
          b.claim(5);
          b.setReg(4, BigInt(SCRATCH_BASE + 0x800 + b.rng.int(64) - 32));
          b.setReg(5, BigInt(SCRATCH_BASE + 0xa00 + 8 * b.rng.int(16)));
          const w: Width = bitness === 64 ? 64 : 32;
          const r = b.reg(w, [4, 5]);
          const r16 = (bitness === 64 ? R16 : R16)[r.idx];
          const spDisp = b.rng.pick([-16, -8, -4, 0, 4, 8, 16]);
          const body: Record<string, () => string> = {
            'push-r': () => `push${sfx} ${r.name}`,
            'pushw-r': () => `pushw %${r16}`,
            'pop-r': () => `pop${sfx} ${r.name}`,
            'popw-r': () => `popw %${r16}`,
            'push-sp': () => `push${sfx} ${sp}`,
            'pop-sp': () => `pop${sfx} ${sp}`,
            'push-imm8': () => `push${sfx} $${b.rng.int(256) - 128}`,
            'push-imm32': () => `push${sfx} $${Number(sext(BigInt(b.rng.u32()), 32))}`,
            'pushw-imm': () => `pushw $${b.rng.int(0x10000) - 0x8000}`,
            'push-m': () => `push${sfx} ${b.mem(0x400, 0x100).text}`,
            'push-m-sp': () => `push${sfx} ${spDisp}(${sp})`,
            'pop-m': () => `pop${sfx} ${b.mem(0x400, 0x100).text}`,
            // the address of a POP's memory operand is computed with the incremented RSP (SDM vol. 2B POP)
            'pop-m-sp': () => `pop${sfx} ${spDisp}(${sp})`,
            enter: () =>
              `enter $${b.rng.pick([0, 8, 16, 24, 0x100 + b.rng.int(64)])}, $${b.rng.pick([0, 1, 2, 3, 5])}`,
            leave: () => 'leave',
            call: () => `call 1f\n1:`,
            'ret-imm': () =>
              bitness === 64
                ? `lea 1f(%rip), ${ax}\n\tpush${sfx} ${ax}\n\tret $${8 * b.rng.int(4)}\n1:`
                : `push${sfx} $1f\n\tret $${4 * b.rng.int(4)}\n1:`,
            pusha: () => 'pushal',
            popa: () => 'popal',
            pushaw: () => 'pushaw',
            popaw: () => 'popaw',
          };
          return { form, body: body[form]() };
        },
      });
  }

  // Page faults part-way: the scratch page is surrounded by not-present pages.
  const below = UNMAPPED_PAGES[0] + 0x1000; // = SCRATCH_BASE: the page under it is not present
  const above = UNMAPPED_PAGES[1]; // first byte of the not-present page above the scratch page
  if (below !== SCRATCH_BASE || above !== SCRATCH_BASE + SCRATCH_SIZE)
    throw new Error('scratch layout changed');
  const strOps = ['movs', 'stos', 'lods', 'cmps', 'scas'];
  for (const op of strOps)
    for (const w of W)
      for (const dir of ['down', 'up'])
        T.push({
          cls: 'pagefault',
          width: w,
          make(b) {
            const bytes = w / 8;
            const n = 1 + b.rng.int(12); // elements that fit before the page boundary
            const extra = 1 + b.rng.int(6);
            const mis = b.rng.int(bytes); // misalignment: the faulting element may straddle the boundary
            const edge =
              dir === 'down' ? n * bytes - bytes + mis : SCRATCH_SIZE - n * bytes + (bytes > 1 ? mis : 0);
            const far = dir === 'down' ? 0x800 + b.rng.int(0x200) : 0x200 + b.rng.int(0x200);
            // which pointer runs off the page: the destination (RDI) or, for MOVS/CMPS, possibly the source
            const srcRuns = op === 'lods' || ((op === 'movs' || op === 'cmps') && b.rng.bool());
            const rsiOff = srcRuns ? edge : far;
            const rdiOff = srcRuns ? far : edge;
            b.claim(1);
            b.claim(6);
            b.claim(7);
            b.setReg(6, BigInt(SCRATCH_BASE + rsiOff));
            b.setReg(7, BigInt(SCRATCH_BASE + rdiOff));
            b.setReg(1, BigInt(n + extra));
            const acc = b.fixedReg(0, w);
            const rep = op === 'cmps' || op === 'scas' ? 'repe' : 'rep';
            if (op === 'cmps' || op === 'scas') {
              // equal elements all the way, so the repeat reaches the missing page
              const pattern = value(b.rng, w);
              if (op === 'scas') b.set(acc, w, pattern);
              for (let i = 0; i < n + extra; i++) {
                const step = dir === 'down' ? -i * bytes : i * bytes;
                for (const off of op === 'cmps' ? [rsiOff, rdiOff] : [rdiOff]) {
                  const o = off + step;
                  if (o >= 0 && o + bytes <= SCRATCH_SIZE) b.poke(o, pattern, bytes);
                }
              }
            }
            return {
              form: `${op}.${dir}${srcRuns ? '.src' : ''}`,
              body: `${rep} ${op}${SUFFIX[w]}`,
              flags: b.flags(dir === 'down'),
              expectFault: true,
              ...(rep === 'repe' ? { vendorRows: ['rep-cmps-fault-flags'] } : {}),
            };
          },
        });
  for (const w of W16)
    for (const form of [
      'add',
      'mov-store',
      'mov-load',
      'xadd',
      'xchg',
      'cmpxchg',
      'inc',
      'bts',
      'neg',
      'shl',
    ])
      for (const side of ['low', 'high'])
        T.push({
          cls: 'pagefault',
          width: w,
          make(b) {
            const bytes = w / 8;
            // `low`: starts in the missing page under the scratch page; `high`: ends in the one above
            const k = 1 + b.rng.int(bytes - 1);
            const addr = side === 'low' ? SCRATCH_BASE - k : SCRATCH_BASE + SCRATCH_SIZE - k;
            const r = b.reg(w);
            b.set(r, w, value(b.rng, w));
            const m = `0x${addr.toString(16)}`;
            const sx = SUFFIX[w];
            const body: Record<string, string> = {
              add: `add${sx} ${r.name}, ${m}`,
              'mov-store': `mov${sx} ${r.name}, ${m}`,
              'mov-load': `mov${sx} ${m}, ${r.name}`,
              xadd: `lock xadd${sx} ${r.name}, ${m}`,
              xchg: `xchg${sx} ${r.name}, ${m}`,
              cmpxchg: `lock cmpxchg${sx} ${r.name}, ${m}`,
              inc: `inc${sx} ${m}`,
              bts: `bts${sx} $${b.rng.int(w)}, ${m}`,
              neg: `neg${sx} ${m}`,
              shl: `shl${sx} $${1 + b.rng.int(w - 1)}, ${m}`,
            };
            return { form: `${form}.${side}`, body: body[form], expectFault: true };
          },
        });
  for (const form of ['push', 'push-imm', 'push-mem', 'pushf', 'pop', 'pop-mem', 'popf'])
    T.push({
      cls: 'pagefault',
      width: bitness,
      make(b) {
        const word = bitness / 8;
        const sfx = bitness === 64 ? 'q' : 'l';
        b.claim(4);
        const isPop = form.startsWith('pop');
        // push: the slot straddles or lies under the bottom of the page; pop: it runs over the top
        const sp = isPop
          ? SCRATCH_BASE + SCRATCH_SIZE - 1 - b.rng.int(word - 1)
          : SCRATCH_BASE + b.rng.int(word);
        b.setReg(4, BigInt(sp));
        const r = b.reg(bitness === 64 ? 64 : 32, [4]);
        const m = b.mem();
        const body: Record<string, string> = {
          push: `push${sfx} ${r.name}`,
          'push-imm': `push${sfx} $${b.rng.int(1000)}`,
          'push-mem': `push${sfx} ${m.text}`,
          pushf: `pushf${sfx}`,
          pop: `pop${sfx} ${r.name}`,
          'pop-mem': `pop${sfx} ${m.text}`,
          popf: `popf${sfx}`,
        };
        return { form, body: body[form], expectFault: true };
      },
    });

  // BCD adjustments (not encodable in 64-bit mode).
  if (bitness === 32)
    for (const op of ['daa', 'das', 'aaa', 'aas', 'aam', 'aad'])
      T.push({
        cls: op,
        width: 8,
        weight: 8,
        make(b) {
          const a = b.fixedReg(0, 16);
          // nibble and byte boundaries of the adjustments (0-6 borrow/carry, 9/A, 99/9A, F9-FF)
          const al = b.rng.bool(0.6)
            ? BigInt(
                b.rng.pick([
                  0, 1, 2, 3, 4, 5, 6, 9, 0x0a, 0x0f, 0x10, 0x19, 0x60, 0x65, 0x66, 0x90, 0x99, 0x9a, 0x9f,
                  0xa0, 0xf9, 0xfa, 0xff,
                ]),
              )
            : BigInt(b.rng.int(256));
          b.set(a, 16, (BigInt(b.rng.int(256)) << 8n) | al);
          if (op === 'aam' || op === 'aad') {
            const base = b.rng.bool(0.5) ? 10 : 1 + b.rng.int(255);
            return { form: base === 10 ? 'base10' : 'baseN', body: base === 10 ? op : `${op} $${base}` };
          }
          // One case in four: the low-nibble adjustment borrows (AL 0-5) or carries (AL FA-FF) with AF=1,
          // and CF starts clear: the final CF then depends on that borrow/carry alone.
          if (b.rng.bool(0.25)) {
            const low = op === 'das' || op === 'aas';
            b.set(a, 8, BigInt(low ? b.rng.int(6) : 0xfa + b.rng.int(6)));
            return { form: `${op}.edge`, body: op, flags: (b.flags() & ~CF) | AF };
          }
          return { form: op, body: op };
        },
      });
  if (bitness === 32)
    T.push({
      cls: 'divfault',
      width: 8,
      make(b) {
        b.claim(0);
        return { form: 'aam0', body: 'aam $0', expectFault: true };
      },
    });
  return T;
}

/** Names of the templates' optional features (host and engine must both have them). */
export const OPTIONAL_FEATURES = ['lzcnt', 'tzcnt', 'popcnt'];

/**
 * Generates `count` cases for `bitness` (at least one per template, round
 * robin over templates), deterministic in `seed`. Templates needing a
 * feature not in `features` are left out.
 */
export function generateCases(
  bitness: Bitness,
  count: number,
  seed: number,
  features: Set<string>,
): DiffCase[] {
  const T = templates(bitness)
    .filter((t) => !t.feature || features.has(t.feature))
    .flatMap((t) => new Array<Template>(t.weight ?? 1).fill(t));
  const rng = new Rng(seed ^ (bitness * 0x10001));
  const out: DiffCase[] = [];
  const perTemplate = new Map<Template, number>();
  const total = Math.max(count, T.length);
  for (let i = 0; i < total; i++) {
    const t = T[i % T.length];
    const b = new Builder(rng, bitness);
    const made = t.make(b);
    const rule = UNDEFINED[t.cls];
    if (!rule) throw new Error(`generator: class ${t.cls} missing from UNDEFINED`);
    const u = rule({ width: t.width, ...made.ctx });
    let undefRegs = b.undefRegs;
    if (u.dest) undefRegs |= 0xffff; // destination undefined: only flags/memory compared (never generated today)
    const n = (perTemplate.get(t) ?? 0) + 1;
    perTemplate.set(t, n);
    out.push({
      id: `${t.cls}.${t.width}.${made.form}#${n}`,
      cls: t.cls,
      width: t.width,
      form: made.form,
      body: '\t' + made.body,
      regs: b.regs,
      rflags: made.flags ?? b.flags(),
      memSeed: rng.u32() || 1,
      memPatch: b.patch.filter(([o]) => o >= 0 && o < SCRATCH_SIZE),
      undefFlags: u.flags,
      undefRegs,
      expectFault: made.expectFault,
      ...(made.vendorRows ? { vendorRows: made.vendorRows } : {}),
    });
  }
  return out;
}

/** Number of templates for a bitness (for reports). */
export function templateCount(bitness: Bitness, features: Set<string>): number {
  return templates(bitness)
    .filter((t) => !t.feature || features.has(t.feature))
    .reduce((n, t) => n + (t.weight ?? 1), 0);
}
