/**
 * Block compiler: turns a decoded basic block into one JS function (built
 * with `new Function` once per block), specialised per instruction: register
 * indices, immediates, operand and address sizes and the instruction's RIP
 * are baked in. Hot instructions (MOV, ALU, INC/DEC, shifts by immediate,
 * LEA, PUSH/POP, CALL/RET/JMP/Jcc, IMUL, MOVZX/MOVSX, CMOVcc, SETcc, ...)
 * are emitted inline; everything else calls the generic implementation
 * (`cpu.x(insn)`, exec.ts).
 *
 * Flags are lazy across blocks (cpu.lfOp/lfA/lfB/lfR...) and tracked
 * statically inside a block: the last flag-producing instruction keeps its
 * operands in locals, a Jcc/SETcc/CMOVcc after it tests those directly, and
 * the lazy state is written once at the block's end. If an instruction
 * faults, the block's catch writes the lazy state as it was before that
 * instruction (faults leave state as before the instruction, SDM vol. 3
 * §6.5), records the faulting instruction index in `cpu.faultIc` and
 * returns -1 (cheaper than rethrowing); the run loop then handles the fault.
 *
 * Data accesses: a direct-mapped TLB hit is two or three typed-array reads
 * and a compare; misses, page-crossing accesses, watched pages and code
 * pages (stores) take `cpu.rdS`/`cpu.wrS`.
 *
 * The function returns the number of instructions retired (the block length,
 * or fewer when a REP string instruction stops early to be resumed).
 */
import type { Cpu } from './cpu';
import { isTerminator } from './block-rules';
import {
  LF_ADD,
  LF_DEC,
  LF_INC,
  LF_LOGIC,
  LF_MUL,
  LF_IMUL64,
  LF_SAR,
  LF_SHL,
  LF_SHR,
  LF_SUB,
  PARITY,
} from './flags';
import type { Insn } from './decoder';

/** A compiled block. */
export interface Block {
  fn: () => number;
  insns: Insn[];
  /** Instruction count. */
  n: number;
  ripLo: number;
  ripHi: number;
  /** Cpu.modeKey the block was compiled for. */
  key: number;
  /** Buffer frame index of the first byte, page offset of the first byte. */
  frame: number;
  pageOff: number;
  /** Frame of the second page for a page-crossing instruction, else -1. */
  frame2: number;
  /** One-instruction block built for a budget tail (not in the lookup table). */
  single: boolean;
  valid: boolean;
  /** A breakpoint is set at the block's first instruction. */
  bp: boolean;
  /** DR6 B0-B3 bits of the guest's instruction breakpoints at the block's first instruction (0: none). */
  drbp: number;
  /** The block ends with a generic (possibly system) instruction: re-derive mode afterwards. */
  sys: boolean;
  /** addedAt[k]: instructions the block had already added to instructionsRetired when instruction k started. */
  addedAt: number[];
  /** Successor cache (two slots): block, its RIP, and the Cpu epoch it was recorded in. */
  c0: Block | null;
  c0lo: number;
  c0hi: number;
  c0ep: number;
  c1: Block | null;
  c1lo: number;
  c1hi: number;
  c1ep: number;
}

const LF_FLAGS = 15; // pseudo-kind: flags fully computed in a local

interface Prod {
  kind: number;
  /** Size in bytes. */
  s: number;
  a: string;
  b: string;
  r: string;
  ah: string;
  bh: string;
  rh: string;
  /** INC/DEC carry-in, MUL overflow, FLAGS: the flags word local. */
  c: string;
}

const SIZE_IDX: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };
const MASK: Record<number, string> = { 1: '255', 2: '65535' };
const SIGN: Record<number, string> = { 1: '128', 2: '32768', 4: '-2147483648' };

let compileCount = 0;
/** Number of blocks compiled since start (for statistics). */
export function blocksCompiled(): number {
  return compileCount;
}

class Gen {
  out: string[] = [];
  locals = new Set<string>(['ic', 'ea', 'eah', 'i', 'o', 't', 'sp', 'sph']);
  prod: Prod | null = null;
  flushAt: string[] = [];
  k = 0;
  long: boolean;
  flat: boolean;
  cmpHi: boolean;
  sys = false;
  /** Instructions already added to state.instructionsRetired by the block before a generic call. */
  added = 0;
  /** addedAt[k]: value of `added` when instruction k starts (for fault accounting). */
  addedAt: number[] = [];

  constructor(
    readonly cpu: Cpu,
    readonly insns: Insn[],
    key: number,
  ) {
    this.long = (key & 7) === 5;
    this.flat = (key & 16) !== 0;
    this.cmpHi = (key & 32) !== 0;
  }

  emit(s: string): void {
    this.out.push(s);
  }

  local(name: string): string {
    this.locals.add(name);
    return name;
  }

  // ---------------- lazy flags ----------------

  flushCode(p: Prod | null): string {
    if (!p) return '';
    if (p.kind === LF_FLAGS) return `cpu.fl=${p.c};cpu.lfOp=0;`;
    const op = p.kind | (SIZE_IDX[p.s] << 4);
    let c = `cpu.lfOp=${op};cpu.lfR=${p.r};`;
    if (p.kind !== LF_LOGIC && p.kind !== LF_MUL) c += `cpu.lfA=${p.a};cpu.lfB=${p.b};`;
    if (p.s === 8)
      c +=
        `cpu.lfRH=${p.rh};` +
        (p.kind !== LF_LOGIC && p.kind !== LF_MUL ? `cpu.lfAH=${p.ah};cpu.lfBH=${p.bh};` : '');
    if (p.kind === LF_INC || p.kind === LF_DEC || p.kind === LF_MUL) c += `cpu.lfCf=${p.c};`;
    return c;
  }

  /** Writes the lazy flag state and forgets the static producer. */
  flush(): void {
    if (this.prod) {
      this.emit(this.flushCode(this.prod));
      this.prod = null;
    }
  }

  /** Expression for condition `cc` from the static producer, or null. */
  condFrom(p: Prod, cc: number): string | null {
    const base = cc >> 1;
    const e = this.condBase(p, base);
    if (e === null) return null;
    return cc & 1 ? `!(${e})` : `(${e})`;
  }

  private sx(v: string, s: number): string {
    if (s === 4) return v;
    const sh = 32 - s * 8;
    return `((${v} << ${sh}) >> ${sh})`;
  }

  private condBase(p: Prod, base: number): string | null {
    const { s, a, b, r, rh, ah, bh } = p;
    if (p.kind === LF_FLAGS) {
      const f = p.c;
      switch (base) {
        case 0:
          return `(${f} & 2048) !== 0`;
        case 1:
          return `(${f} & 1) !== 0`;
        case 2:
          return `(${f} & 64) !== 0`;
        case 3:
          return `(${f} & 65) !== 0`;
        case 4:
          return `(${f} & 128) !== 0`;
        case 5:
          return `(${f} & 4) !== 0`;
        case 6:
          return `((${f} & 128) !== 0) !== ((${f} & 2048) !== 0)`;
        default:
          return `(${f} & 64) !== 0 || ((${f} & 128) !== 0) !== ((${f} & 2048) !== 0)`;
      }
    }
    const zf = s === 8 ? `(${r} | ${rh}) === 0` : `${r} === 0`;
    const sf = s === 8 ? `${rh} < 0` : s === 4 ? `${r} < 0` : `(${r} & ${SIGN[s]}) !== 0`;
    if (base === 2) return zf;
    if (base === 4) return sf;
    if (base === 5) return `(P[${r} & 255]) !== 0`;
    switch (p.kind) {
      case LF_SUB:
        if (s === 8) {
          const cf = `((${ah} >>> 0) < (${bh} >>> 0) || (${ah} === ${bh} && (${a} >>> 0) < (${b} >>> 0)))`;
          const lt = `(${ah} < ${bh} || (${ah} === ${bh} && (${a} >>> 0) < (${b} >>> 0)))`;
          if (base === 1) return cf;
          if (base === 3) return `${cf} || ${zf}`;
          if (base === 6) return lt;
          if (base === 7) return `${lt} || ${zf}`;
          if (base === 0) return `((${ah} ^ ${bh}) & (${ah} ^ ${rh})) < 0`;
          return null;
        }
        if (s === 4) {
          if (base === 1) return `(${a} >>> 0) < (${b} >>> 0)`;
          if (base === 3) return `(${a} >>> 0) <= (${b} >>> 0)`;
          if (base === 6) return `${a} < ${b}`;
          if (base === 7) return `${a} <= ${b}`;
          if (base === 0) return `((${a} ^ ${b}) & (${a} ^ ${r})) < 0`;
          return null;
        }
        if (base === 1) return `${a} < ${b}`;
        if (base === 3) return `${a} <= ${b}`;
        if (base === 6) return `${this.sx(a, s)} < ${this.sx(b, s)}`;
        if (base === 7) return `${this.sx(a, s)} <= ${this.sx(b, s)}`;
        if (base === 0) return `((${a} ^ ${b}) & (${a} ^ ${r}) & ${SIGN[s]}) !== 0`;
        return null;
      case LF_ADD:
        if (s === 8) return null;
        if (base === 1) return s === 4 ? `(${r} >>> 0) < (${a} >>> 0)` : `${r} < ${a}`;
        if (base === 3) return s === 4 ? `(${r} >>> 0) < (${a} >>> 0) || ${zf}` : `${r} < ${a} || ${zf}`;
        return null;
      case LF_LOGIC:
      case LF_MUL:
        if (p.kind === LF_MUL) {
          if (base === 0 || base === 1) return `${p.c}`;
          return null;
        }
        if (base === 0 || base === 1) return 'false';
        if (base === 3) return zf;
        if (base === 6) return sf;
        if (base === 7) return `${zf} || ${sf}`;
        return null;
      case LF_INC:
      case LF_DEC:
        if (base === 1) return `${p.c} !== 0`;
        if (base === 3) return `${p.c} !== 0 || ${zf}`;
        if (base === 0 && s === 4) return p.kind === LF_INC ? `${r} === -2147483648` : `${r} === 2147483647`;
        return null;
    }
    return null;
  }

  /** Condition expression for `cc`, flushing to a runtime evaluation when the producer is unknown. */
  cond(cc: number): string {
    if (this.prod) {
      const e = this.condFrom(this.prod, cc);
      if (e !== null) return e;
      this.flush();
    }
    return `cpu.cond(${cc})`;
  }

  /** Expression for CF (0/1) of the current flags. */
  cf(): string {
    if (this.prod) {
      const e = this.condFrom(this.prod, 2);
      if (e !== null) return `(${e} ? 1 : 0)`;
      this.flush();
    }
    return 'cpu.getCF()';
  }

  /** Full arithmetic flags word expression. */
  flagsWord(): string {
    const p = this.prod;
    if (p && p.kind === LF_FLAGS) return p.c;
    if (p && p.kind === LF_LOGIC && p.s !== 8) {
      return `((${p.r} & ${p.s === 4 ? -1 : MASK[p.s]}) === 0 ? 64 : 0) | ((${p.r} & ${SIGN[p.s]}) !== 0 ? 128 : 0) | P[${p.r} & 255]`;
    }
    this.flush();
    return 'cpu.arith()';
  }

  // ---------------- registers ----------------

  reg(s: number, r: number, d: Insn): string {
    if (s === 1) {
      if (!d.rex && r >= 4 && r < 8) return `((R[${r - 4}] >> 8) & 255)`;
      return `(R[${r}] & 255)`;
    }
    if (s === 2) return `(R[${r}] & 65535)`;
    return `R[${r}]`;
  }

  setReg(s: number, r: number, v: string, vh: string, d: Insn): void {
    if (s === 1) {
      if (!d.rex && r >= 4 && r < 8) this.emit(`R[${r - 4}] = (R[${r - 4}] & -65281) | ((${v} & 255) << 8);`);
      else this.emit(`R[${r}] = (R[${r}] & -256) | (${v} & 255);`);
    } else if (s === 2) this.emit(`R[${r}] = (R[${r}] & -65536) | (${v} & 65535);`);
    else if (s === 4) this.emit(`R[${r}] = ${v}; H[${r}] = 0;`);
    else this.emit(`R[${r}] = ${v}; H[${r}] = ${vh};`);
  }

  // ---------------- memory ----------------

  /** Segment of the memory operand. */
  segOf(d: Insn): number {
    return d.seg >= 0 ? d.seg : d.defSeg;
  }

  /** Emits code leaving the operand's linear address in ea/eah. Returns false when it cannot be inlined. */
  ea(d: Insn, size: number, write: boolean): boolean {
    const seg = this.segOf(d);
    this.ssAcc = this.long && seg === 2 && d.asz === 8;
    const b = d.base,
      x = d.index,
      sc = d.scale,
      disp = d.disp;
    if (d.asz === 8) {
      if (d.ripRel) {
        const n = (d.nextLo >>> 0) + disp;
        const lo = n | 0;
        const hi = (d.nextHi + Math.floor(n / 4294967296)) | 0;
        this.emit(`ea = ${lo}; eah = ${hi};`);
      } else if (b >= 0 && x < 0) {
        if (disp === 0) this.emit(`ea = R[${b}]; eah = H[${b}];`);
        else if (disp > 0)
          this.emit(
            `t = (R[${b}] >>> 0) + ${disp}; ea = t | 0; eah = t > 4294967295 ? (H[${b}] + 1) | 0 : H[${b}];`,
          );
        else
          this.emit(`t = (R[${b}] >>> 0) + ${disp}; ea = t | 0; eah = t < 0 ? (H[${b}] - 1) | 0 : H[${b}];`);
      } else if (x >= 0) {
        const bl = b >= 0 ? `(R[${b}] >>> 0) + ` : '';
        const bh = b >= 0 ? `H[${b}] + ` : '';
        this.emit(
          `t = ${bl}(R[${x}] >>> 0) * ${1 << sc} + ${disp}; ea = t | 0; eah = (${bh}(H[${x}] << ${sc}) + Math.floor(t / 4294967296)) | 0;`,
        );
      } else {
        this.emit(`ea = ${disp}; eah = ${disp >> 31};`);
      }
      if (seg === 4 || seg === 5) {
        this.emit(
          `t = (ea >>> 0) + (SB[${seg}] >>> 0); ea = t | 0; eah = (eah + SBH[${seg}] + (t > 4294967295 ? 1 : 0)) | 0;`,
        );
      }
      return true;
    }
    let e: string;
    if (d.asz === 4) {
      const parts: string[] = [];
      if (b >= 0) parts.push(`R[${b}]`);
      if (x >= 0) parts.push(sc ? `(R[${x}] << ${sc})` : `R[${x}]`);
      if (disp !== 0 || parts.length === 0) parts.push(`${disp}`);
      e = `(${parts.join(' + ')}) | 0`;
    } else {
      const parts: string[] = [];
      if (b >= 0) parts.push(`R[${b}]`);
      if (x >= 0) parts.push(`R[${x}]`);
      parts.push(`${disp}`);
      e = `(${parts.join(' + ')}) & 65535`;
    }
    if (this.long) {
      // 67h in 64-bit mode: 32-bit address, zero-extended, then FS/GS base.
      this.emit(`ea = ${e}; eah = 0;`);
      if (seg === 4 || seg === 5) {
        this.emit(
          `t = (ea >>> 0) + (SB[${seg}] >>> 0); ea = t | 0; eah = (SBH[${seg}] + (t > 4294967295 ? 1 : 0)) | 0;`,
        );
      }
      return true;
    }
    if (this.flat && d.asz === 4 && (seg === 0 || seg === 2 || seg === 3)) {
      this.emit(`ea = ${e}; eah = 0;`);
      return true;
    }
    this.emit(`ea = cpu.segLin(${seg}, ${e}, ${size}, ${write}); eah = 0;`);
    return true;
  }

  /**
   * The address in ea/eah references SS in 64-bit mode: the slow path checks it is canonical and
   * raises #SS(0) (SDM vol. 3 §6.15); the fast path never matches a non-canonical eah (TLB tags hold
   * canonical high halves only), so the check costs nothing on a TLB hit.
   */
  private ssAcc = false;

  private ssCheck(): string {
    return this.ssAcc ? 'if (((eah << 16) >> 16) !== eah) cpu.fault(12, 0); ' : '';
  }

  private hiCheck(): string {
    return this.cmpHi ? ' && TH[i] === eah' : '';
  }

  /** Loads `s` bytes at ea/eah into v (and vh for 8). */
  load(s: number, v: string, vh: string): void {
    const lim = 4096 - s;
    let rd: string;
    switch (s) {
      case 1:
        rd = `${v} = u8[TO[i] + (ea & 4095)];`;
        break;
      case 2:
        rd = `${v} = dv.getUint16(TO[i] + (ea & 4095), true);`;
        break;
      case 4:
        rd = `${v} = dv.getInt32(TO[i] + (ea & 4095), true);`;
        break;
      default:
        rd = `o = TO[i] + (ea & 4095); ${v} = dv.getInt32(o, true); ${vh} = dv.getInt32(o + 4, true);`;
    }
    const cross = s === 1 ? '' : ` && (ea & 4095) <= ${lim}`;
    this.emit(
      `i = (ea >>> 12) & 4095; if (RT[i] === (ea & -4096)${this.hiCheck()}${cross}) { ${rd} } else { ${this.ssCheck()}${v} = cpu.rdS(ea, eah, ${s});${s === 8 ? ` ${vh} = cpu.tmpHi;` : ''} }`,
    );
  }

  /** Stores `s` bytes of v (vh) at ea/eah. */
  store(s: number, v: string, vh: string): void {
    const lim = 4096 - s;
    let wr: string;
    switch (s) {
      case 1:
        wr = `u8[TO[i] + (ea & 4095)] = ${v};`;
        break;
      case 2:
        wr = `dv.setUint16(TO[i] + (ea & 4095), ${v}, true);`;
        break;
      case 4:
        wr = `dv.setInt32(TO[i] + (ea & 4095), ${v}, true);`;
        break;
      default:
        wr = `o = TO[i] + (ea & 4095); dv.setInt32(o, ${v}, true); dv.setInt32(o + 4, ${vh}, true);`;
    }
    const cross = s === 1 ? '' : ` && (ea & 4095) <= ${lim}`;
    this.emit(
      `i = (ea >>> 12) & 4095; if (WT[i] === (ea & -4096)${this.hiCheck()}${cross}) { ${wr} } else { ${this.ssCheck()}cpu.wrS(ea, eah, ${s}, ${v}, ${s === 8 ? vh : 0}); }`,
    );
  }

  /** Reads the r/m operand into locals v/vh (memory: ea/eah stay set for a later store). */
  readRM(d: Insn, s: number, v: string, vh: string, write: boolean): boolean {
    if (d.mod === 3) {
      this.emit(`${v} = ${this.reg(s, d.rm, d)};`);
      if (s === 8) this.emit(`${vh} = H[${d.rm}];`);
      return true;
    }
    if (!this.ea(d, s, write)) return false;
    this.load(s, v, vh);
    return true;
  }

  writeRM(d: Insn, s: number, v: string, vh: string): void {
    if (d.mod === 3) this.setReg(s, d.rm, v, vh, d);
    else this.store(s, v, vh);
  }

  // ---------------- stack ----------------

  stackOk(): boolean {
    return this.long || this.flat;
  }

  /** Emits a push of v (vh) of size s; the stack pointer is committed after the store. */
  push(s: number, v: string, vh: string): void {
    this.ssAcc = this.long;
    if (this.long) {
      if (s === 8)
        this.emit(`sp = R[4]; sph = H[4]; ea = (sp - 8) | 0; eah = (sp >>> 0) < 8 ? (sph - 1) | 0 : sph;`);
      else this.emit(`sp = R[4]; sph = H[4]; ea = (sp - 2) | 0; eah = (sp >>> 0) < 2 ? (sph - 1) | 0 : sph;`);
      this.store(s, v, vh);
      this.emit(`R[4] = ea; H[4] = eah;`);
    } else {
      this.emit(`ea = (R[4] - ${s}) | 0; eah = 0;`);
      this.store(s, v, vh);
      this.emit(`R[4] = ea;`);
    }
  }

  /** Loads the stack top into v (vh); caller commits with popCommit. */
  popLoad(s: number, v: string, vh: string): void {
    this.ssAcc = this.long;
    if (this.long) this.emit(`ea = R[4]; eah = H[4];`);
    else this.emit(`ea = R[4]; eah = 0;`);
    this.load(s, v, vh);
  }

  popCommit(s: number, extra = 0): void {
    const n = s + extra;
    if (this.long)
      this.emit(`t = (R[4] >>> 0) + ${n}; R[4] = t | 0; if (t > 4294967295) H[4] = (H[4] + 1) | 0;`);
    else this.emit(`R[4] = (R[4] + ${n}) | 0;`);
  }

  // ---------------- control transfer ----------------

  /** Target of a relative branch as [lo, hi] constants. */
  relTarget(d: Insn): [number, number] {
    if (this.long) {
      const n = (d.nextLo >>> 0) + d.imm;
      return [n | 0, (d.nextHi + Math.floor(n / 4294967296)) | 0];
    }
    const t = (d.nextLo + d.imm) | 0;
    return [d.osz === 2 ? t & 0xffff : t, 0];
  }

  setRipConst(lo: number, hi: number): string {
    return this.long ? `S.ripLo = ${lo}; S.ripHi = ${hi};` : `S.ripLo = ${lo};`;
  }

  // ---------------- ALU ----------------

  /** Emits ALU op (0-7: ADD OR ADC SBB AND SUB XOR CMP) on a/b, result into r; sets the producer. Returns false for ADC/SBB. */
  alu(op: number, s: number, a: string, b: string, ah: string, bh: string): Prod | null {
    const k = this.k;
    const r = this.local(`r${k}`);
    const rh = this.local(`rh${k}`);
    const m = s <= 2 ? ` & ${MASK[s]}` : ' | 0';
    let kind: number;
    switch (op) {
      case 0:
        kind = LF_ADD;
        if (s === 8)
          this.emit(
            `t = (${a} >>> 0) + (${b} >>> 0); ${r} = t | 0; ${rh} = (${ah} + ${bh} + (t > 4294967295 ? 1 : 0)) | 0;`,
          );
        else this.emit(`${r} = (${a} + ${b})${m};`);
        break;
      case 5:
      case 7:
        kind = LF_SUB;
        if (s === 8)
          this.emit(
            `t = (${a} >>> 0) - (${b} >>> 0); ${r} = t | 0; ${rh} = (${ah} - ${bh} - (t < 0 ? 1 : 0)) | 0;`,
          );
        else this.emit(`${r} = (${a} - ${b})${m};`);
        break;
      case 1:
      case 4:
      case 6: {
        kind = LF_LOGIC;
        const o = op === 1 ? '|' : op === 4 ? '&' : '^';
        this.emit(`${r} = ${a} ${o} ${b};`);
        if (s === 8) this.emit(`${rh} = ${ah} ${o} ${bh};`);
        break;
      }
      default:
        return null;
    }
    const p: Prod = { kind, s, a, b, r, ah, bh, rh, c: '' };
    this.prod = p;
    return p;
  }

  // ---------------- per instruction ----------------

  /** Emits instruction k inline; returns false when it must go through the generic path. */
  inline(d: Insn): boolean {
    const k = this.k;
    const op = d.op;
    const s = d.osz;
    if (d.lock || d.bad) return false;
    // ALU r/m, r / r, r/m / acc, imm
    if (op < 0x40 && (op & 7) < 6) {
      const aop = op >> 3;
      if (aop === 2 || aop === 3) return false;
      const form = op & 7;
      const sz = form & 1 ? s : 1;
      const a = this.local(`a${k}`),
        b = this.local(`b${k}`),
        ah = this.local(`ah${k}`),
        bh = this.local(`bh${k}`);
      if (form < 4) {
        const toRM = form < 2;
        if (toRM) {
          if (!this.readRM(d, sz, a, ah, aop !== 7)) return false;
          this.emit(`${b} = ${this.reg(sz, d.reg, d)};`);
          if (sz === 8) this.emit(`${bh} = H[${d.reg}];`);
        } else {
          this.emit(`${a} = ${this.reg(sz, d.reg, d)};`);
          if (sz === 8) this.emit(`${ah} = H[${d.reg}];`);
          if (!this.readRM(d, sz, b, bh, false)) return false;
        }
        const p = this.alu(aop, sz, a, b, ah, bh)!;
        if (aop !== 7) {
          if (toRM) this.writeRM(d, sz, p.r, p.rh);
          else this.setReg(sz, d.reg, p.r, p.rh, d);
        }
        return true;
      }
      this.emit(`${a} = ${this.reg(sz, 0, d)};`);
      if (sz === 8) this.emit(`${ah} = H[0];`);
      this.immTo(b, bh, sz, d);
      const p = this.alu(aop, sz, a, b, ah, bh)!;
      if (aop !== 7) this.setReg(sz, 0, p.r, p.rh, d);
      return true;
    }
    switch (op) {
      case 0x80:
      case 0x81:
      case 0x83: {
        const aop = d.reg & 7;
        if (aop === 2 || aop === 3) return false;
        const sz = op === 0x80 ? 1 : s;
        const a = this.local(`a${k}`),
          b = this.local(`b${k}`),
          ah = this.local(`ah${k}`),
          bh = this.local(`bh${k}`);
        if (!this.readRM(d, sz, a, ah, aop !== 7)) return false;
        this.immTo(b, bh, sz, d);
        const p = this.alu(aop, sz, a, b, ah, bh)!;
        if (aop !== 7) this.writeRM(d, sz, p.r, p.rh);
        return true;
      }
      case 0x84:
      case 0x85:
      case 0xa8:
      case 0xa9: {
        const sz = op & 1 ? s : 1;
        const a = this.local(`a${k}`),
          b = this.local(`b${k}`),
          ah = this.local(`ah${k}`),
          bh = this.local(`bh${k}`);
        if (op < 0xa8) {
          if (!this.readRM(d, sz, a, ah, false)) return false;
          this.emit(`${b} = ${this.reg(sz, d.reg, d)};`);
          if (sz === 8) this.emit(`${bh} = H[${d.reg}];`);
        } else {
          this.emit(`${a} = ${this.reg(sz, 0, d)};`);
          if (sz === 8) this.emit(`${ah} = H[0];`);
          this.immTo(b, bh, sz, d);
        }
        this.alu(4, sz, a, b, ah, bh);
        return true;
      }
      case 0xf6:
      case 0xf7: {
        const g = d.reg & 7;
        const sz = op === 0xf6 ? 1 : s;
        const a = this.local(`a${k}`),
          b = this.local(`b${k}`),
          ah = this.local(`ah${k}`),
          bh = this.local(`bh${k}`);
        if (g === 0 || g === 1) {
          if (!this.readRM(d, sz, a, ah, false)) return false;
          this.immTo(b, bh, sz, d);
          this.alu(4, sz, a, b, ah, bh);
          return true;
        }
        if (g === 2) {
          // NOT: no flags.
          if (!this.readRM(d, sz, a, ah, true)) return false;
          const r = this.local(`r${k}`),
            rh = this.local(`rh${k}`);
          this.emit(sz <= 2 ? `${r} = ~${a} & ${MASK[sz]};` : `${r} = ~${a};`);
          if (sz === 8) this.emit(`${rh} = ~${ah};`);
          this.writeRM(d, sz, r, rh);
          return true;
        }
        if (g === 3) {
          if (!this.readRM(d, sz, b, bh, true)) return false;
          this.emit(`${a} = 0; ${ah} = 0;`);
          const p = this.alu(5, sz, a, b, ah, bh)!;
          this.writeRM(d, sz, p.r, p.rh);
          return true;
        }
        return false;
      }
      case 0x88:
      case 0x89: {
        const sz = op === 0x88 ? 1 : s;
        const v = this.local(`a${k}`);
        this.emit(`${v} = ${this.reg(sz, d.reg, d)};`);
        if (d.mod === 3) {
          this.setReg(sz, d.rm, v, `H[${d.reg}]`, d);
          return true;
        }
        if (!this.ea(d, sz, true)) return false;
        this.store(sz, v, `H[${d.reg}]`);
        return true;
      }
      case 0x8a:
      case 0x8b: {
        const sz = op === 0x8a ? 1 : s;
        const v = this.local(`a${k}`),
          vh = this.local(`ah${k}`);
        if (!this.readRM(d, sz, v, vh, false)) return false;
        this.setReg(sz, d.reg, v, vh, d);
        return true;
      }
      case 0xc6:
      case 0xc7: {
        if ((d.reg & 7) !== 0) return false;
        const sz = op === 0xc6 ? 1 : s;
        const imm = sz === 1 ? d.imm & 255 : sz === 2 ? d.imm & 65535 : d.imm;
        if (d.mod === 3) {
          this.setReg(sz, d.rm, `${imm}`, `${d.immHi}`, d);
          return true;
        }
        if (!this.ea(d, sz, true)) return false;
        this.store(sz, `${imm}`, `${d.immHi}`);
        return true;
      }
      case 0x8d: {
        if (d.mod === 3) return false;
        // LEA: offset only, no segment base.
        const sz = s;
        const saveSeg = d.seg;
        d.seg = 3;
        const dsFlat = this.flat;
        this.flat = true;
        const ok = this.eaNoSeg(d);
        this.flat = dsFlat;
        d.seg = saveSeg;
        if (!ok) return false;
        if (sz === 8) this.setReg(8, d.reg, 'ea', 'eah', d);
        else if (sz === 4) this.setReg(4, d.reg, 'ea', '0', d);
        else this.setReg(2, d.reg, 'ea', '0', d);
        return true;
      }
      case 0x90:
        if (d.rex & 1) return false;
        return true; // NOP / PAUSE
      case 0x11f:
      case 0x118:
      case 0x119:
      case 0x11a:
      case 0x11b:
      case 0x11c:
      case 0x11d:
      case 0x11e:
        return true; // hint NOPs (no memory access)
      case 0x98:
        if (s === 4) this.setReg(4, 0, '((R[0] << 16) >> 16)', '0', d);
        else if (s === 8) this.setReg(8, 0, 'R[0]', '(R[0] >> 31)', d);
        else this.setReg(2, 0, '(((R[0] << 24) >> 24) & 65535)', '0', d);
        return true;
      case 0x99:
        if (s === 4) this.setReg(4, 2, '(R[0] >> 31)', '0', d);
        else if (s === 8) this.setReg(8, 2, '(H[0] >> 31)', '(H[0] >> 31)', d);
        else this.setReg(2, 2, '(((R[0] << 16) >> 31) & 65535)', '0', d);
        return true;
    }
    if (op >= 0xb0 && op <= 0xbf) {
      const sz = op < 0xb8 ? 1 : s;
      const r = (op & 7) | ((d.rex & 1) << 3);
      const imm = sz === 1 ? d.imm & 255 : sz === 2 ? d.imm & 65535 : d.imm;
      this.setReg(sz, r, `${imm}`, `${sz === 8 ? d.immHi : 0}`, d);
      return true;
    }
    if (op >= 0x40 && op <= 0x4f && !this.long) {
      return this.incDec(d, op < 0x48 ? 0 : 1, s, op & 7, true);
    }
    if ((op === 0xfe || op === 0xff) && (d.reg & 7) < 2) {
      return this.incDec(d, d.reg & 7, op === 0xfe ? 1 : s, -1, false);
    }
    if (op >= 0x50 && op <= 0x57 && this.stackOk() && s !== 2) {
      const r = (op & 7) | ((d.rex & 1) << 3);
      const v = this.local(`a${k}`),
        vh = this.local(`ah${k}`);
      this.emit(`${v} = R[${r}]; ${vh} = H[${r}];`);
      this.push(s, v, vh);
      return true;
    }
    if (op >= 0x58 && op <= 0x5f && this.stackOk() && s !== 2) {
      const r = (op & 7) | ((d.rex & 1) << 3);
      const v = this.local(`a${k}`),
        vh = this.local(`ah${k}`);
      this.popLoad(s, v, vh);
      this.popCommit(s);
      this.setReg(s, r, v, vh, d);
      return true;
    }
    if ((op === 0x68 || op === 0x6a) && this.stackOk() && s !== 2) {
      this.push(s, `${d.imm}`, `${d.imm >> 31}`);
      return true;
    }
    if ((op >= 0xc0 && op <= 0xc1) || (op >= 0xd0 && op <= 0xd1)) {
      return this.shift(d);
    }
    if ((op === 0x69 || op === 0x6b || op === 0x1af) && s === 8) {
      const a = this.local(`a${k}`),
        ah = this.local(`ah${k}`),
        b = this.local(`b${k}`),
        bh = this.local(`bh${k}`),
        r = this.local(`r${k}`),
        rh = this.local(`rh${k}`);
      if (!this.readRM(d, 8, a, ah, false)) return false;
      if (op === 0x1af) this.emit(`${b} = R[${d.reg}]; ${bh} = H[${d.reg}];`);
      else this.emit(`${b} = ${d.imm}; ${bh} = ${d.imm >> 31};`);
      this.emit(`${r} = cpu.mul64(${a}, ${ah}, ${b}, ${bh}); ${rh} = cpu.tmpHi;`);
      this.setReg(8, d.reg, r, rh, d);
      this.prod = { kind: LF_IMUL64, s: 8, a, b, r, ah, bh, rh, c: '' };
      return true;
    }
    if (op === 0x69 || op === 0x6b || op === 0x1af) {
      if (s !== 4) return false;
      const a = this.local(`a${k}`),
        b = this.local(`b${k}`),
        r = this.local(`r${k}`),
        c = this.local(`c${k}`);
      if (!this.readRM(d, 4, a, 'ah', false)) return false;
      if (op === 0x1af) this.emit(`${b} = R[${d.reg}];`);
      else this.emit(`${b} = ${d.imm};`);
      this.emit(`${r} = Math.imul(${a}, ${b}); ${c} = (${a} * ${b}) !== ${r};`);
      this.setReg(4, d.reg, r, '0', d);
      this.prod = { kind: LF_MUL, s: 4, a, b, r, ah: '0', bh: '0', rh: '0', c };
      return true;
    }
    if (op === 0x1b6 || op === 0x1b7 || op === 0x1be || op === 0x1bf) {
      const ss = op & 1 ? 2 : 1;
      const v = this.local(`a${k}`);
      if (!this.readRM(d, ss, v, 'ah', false)) return false;
      let e = v;
      if (op >= 0x1be) e = this.sx(v, ss);
      if (s === 8) this.setReg(8, d.reg, e, op >= 0x1be ? `(${e} >> 31)` : '0', d);
      else if (s === 4) this.setReg(4, d.reg, e, '0', d);
      else this.setReg(2, d.reg, `(${e} & 65535)`, '0', d);
      return true;
    }
    if (op === 0x63 && this.long) {
      const v = this.local(`a${k}`);
      if (!this.readRM(d, 4, v, 'ah', false)) return false;
      if (s === 8) this.setReg(8, d.reg, v, `(${v} >> 31)`, d);
      else if (s === 4) this.setReg(4, d.reg, v, '0', d);
      else return false;
      return true;
    }
    if (op >= 0x140 && op <= 0x14f) {
      // CMOVcc: the source is read even when the condition is false; 32-bit form zero-extends anyway.
      const v = this.local(`a${k}`),
        vh = this.local(`ah${k}`);
      if (!this.readRM(d, s, v, vh, false)) return false;
      const c = this.cond(op & 15);
      if (s === 4) this.emit(`if (${c}) R[${d.reg}] = ${v}; H[${d.reg}] = 0;`);
      else if (s === 8) this.emit(`if (${c}) { R[${d.reg}] = ${v}; H[${d.reg}] = ${vh}; }`);
      else this.emit(`if (${c}) R[${d.reg}] = (R[${d.reg}] & -65536) | ${v};`);
      return true;
    }
    if (op >= 0x190 && op <= 0x19f) {
      const c = this.cond(op & 15);
      const v = this.local(`a${k}`);
      this.emit(`${v} = (${c}) ? 1 : 0;`);
      if (d.mod === 3) this.setReg(1, d.rm, v, '0', d);
      else {
        if (!this.ea(d, 1, true)) return false;
        this.store(1, v, '0');
      }
      return true;
    }
    return false;
  }

  /** EA for LEA: offset only (no segment base, no limit check). */
  private eaNoSeg(d: Insn): boolean {
    if (d.asz === 8) return this.ea(d, 0, false);
    const b = d.base,
      x = d.index;
    const parts: string[] = [];
    if (b >= 0) parts.push(`R[${b}]`);
    if (x >= 0) parts.push(d.scale ? `(R[${x}] << ${d.scale})` : `R[${x}]`);
    parts.push(`${d.disp}`);
    this.emit(
      d.asz === 4
        ? `ea = (${parts.join(' + ')}) | 0; eah = 0;`
        : `ea = (${parts.join(' + ')}) & 65535; eah = 0;`,
    );
    return true;
  }

  private immTo(b: string, bh: string, sz: number, d: Insn): void {
    const imm = sz === 1 ? d.imm & 255 : sz === 2 ? d.imm & 65535 : d.imm;
    this.emit(`${b} = ${imm};`);
    if (sz === 8) this.emit(`${bh} = ${d.imm >> 31};`);
  }

  private incDec(d: Insn, dec: number, s: number, reg: number, short: boolean): boolean {
    const k = this.k;
    const a = this.local(`a${k}`),
      ah = this.local(`ah${k}`),
      r = this.local(`r${k}`),
      rh = this.local(`rh${k}`),
      c = this.local(`c${k}`);
    const cfe = this.cf();
    if (short) this.emit(`${a} = ${this.reg(s, reg, d)};`);
    else if (!this.readRM(d, s, a, ah, true)) return false;
    this.emit(`${c} = ${cfe};`);
    const delta = dec ? '- 1' : '+ 1';
    if (s === 8) {
      if (dec) this.emit(`${r} = (${a} - 1) | 0; ${rh} = ${a} === 0 ? (${ah} - 1) | 0 : ${ah};`);
      else this.emit(`${r} = (${a} + 1) | 0; ${rh} = ${r} === 0 ? (${ah} + 1) | 0 : ${ah};`);
    } else if (s === 4) this.emit(`${r} = (${a} ${delta}) | 0;`);
    else this.emit(`${r} = (${a} ${delta}) & ${MASK[s]};`);
    if (short) this.setReg(s, reg, r, rh, d);
    else this.writeRM(d, s, r, rh);
    this.prod = { kind: dec ? LF_DEC : LF_INC, s, a, b: '1', r, ah, bh: '0', rh, c };
    return true;
  }

  private shift(d: Insn): boolean {
    const k = this.k;
    const g = d.reg & 7;
    const s = d.op & 1 ? d.osz : 1;
    if (s === 8) return this.shift64(d);
    if (s !== 4) return false;
    const cnt = d.op >= 0xd0 ? 1 : d.imm & 31;
    if (g === 2 || g === 3) return false;
    const a = this.local(`a${k}`),
      r = this.local(`r${k}`);
    if (!this.readRM(d, 4, a, 'ah', true)) return false;
    if (cnt === 0) {
      // Count 0: no change, but a 32-bit register destination is still zero-extended.
      if (d.mod === 3 && this.long) this.emit(`H[${d.rm}] = 0;`);
      return true;
    }
    switch (g) {
      case 4:
      case 6:
        this.emit(`${r} = ${a} << ${cnt};`);
        this.writeRM(d, 4, r, '0');
        this.prod = { kind: LF_SHL, s: 4, a, b: `${cnt}`, r, ah: '0', bh: '0', rh: '0', c: '' };
        return true;
      case 5:
        this.emit(`${r} = (${a} >>> ${cnt}) | 0;`);
        this.writeRM(d, 4, r, '0');
        this.prod = { kind: LF_SHR, s: 4, a, b: `${cnt}`, r, ah: '0', bh: '0', rh: '0', c: '' };
        return true;
      case 7:
        this.emit(`${r} = ${a} >> ${cnt};`);
        this.writeRM(d, 4, r, '0');
        this.prod = { kind: LF_SAR, s: 4, a, b: `${cnt}`, r, ah: '0', bh: '0', rh: '0', c: '' };
        return true;
      case 0:
      case 1: {
        const f = this.local(`c${k}`);
        const fw = this.flagsWord();
        if (g === 0) {
          this.emit(`${r} = (${a} << ${cnt}) | (${a} >>> ${32 - cnt});`);
          this.emit(`${f} = (${fw}) & -2050 | (${r} & 1) | ((((${r} >>> 31) ^ ${r}) & 1) << 11);`);
        } else {
          this.emit(`${r} = (${a} >>> ${cnt}) | (${a} << ${32 - cnt});`);
          this.emit(
            `${f} = (${fw}) & -2050 | (${r} >>> 31) | ((((${r} >>> 31) ^ (${r} >>> 30)) & 1) << 11);`,
          );
        }
        this.writeRM(d, 4, r, '0');
        this.prod = { kind: LF_FLAGS, s: 4, a, b: '', r, ah: '0', bh: '0', rh: '0', c: f };
        return true;
      }
    }
    return false;
  }

  /** SHL/SHR/SAR r/m64 by an immediate (or 1): flags stay lazy (64-bit shift kinds). */
  private shift64(d: Insn): boolean {
    const k = this.k;
    const g = d.reg & 7;
    if (g < 4) return false;
    const c = d.op >= 0xd0 ? 1 : d.imm & 63;
    const a = this.local(`a${k}`),
      ah = this.local(`ah${k}`),
      r = this.local(`r${k}`),
      rh = this.local(`rh${k}`);
    if (!this.readRM(d, 8, a, ah, true)) return false;
    if (c === 0) return true;
    let kind: number;
    if (g === 5) {
      kind = LF_SHR;
      if (c < 32) this.emit(`${r} = (${a} >>> ${c}) | (${ah} << ${32 - c}); ${rh} = (${ah} >>> ${c}) | 0;`);
      else if (c === 32) this.emit(`${r} = ${ah}; ${rh} = 0;`);
      else this.emit(`${r} = (${ah} >>> ${c - 32}) | 0; ${rh} = 0;`);
    } else if (g === 7) {
      kind = LF_SAR;
      if (c < 32) this.emit(`${r} = (${a} >>> ${c}) | (${ah} << ${32 - c}); ${rh} = ${ah} >> ${c};`);
      else if (c === 32) this.emit(`${r} = ${ah}; ${rh} = ${ah} >> 31;`);
      else this.emit(`${r} = ${ah} >> ${c - 32}; ${rh} = ${ah} >> 31;`);
    } else {
      kind = LF_SHL;
      if (c < 32) this.emit(`${r} = ${a} << ${c}; ${rh} = (${ah} << ${c}) | (${a} >>> ${32 - c});`);
      else if (c === 32) this.emit(`${r} = 0; ${rh} = ${a};`);
      else this.emit(`${r} = 0; ${rh} = ${a} << ${c - 32};`);
    }
    this.writeRM(d, 8, r, rh);
    this.prod = { kind, s: 8, a, b: `${c}`, r, ah, bh: '0', rh, c: '' };
    return true;
  }

  /** Emits a terminator inline. Returns false for the generic path. */
  terminator(d: Insn): boolean {
    if (d.lock || d.bad) return false;
    const op = d.op;
    const n = this.k + 1 - this.added;
    if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) {
      const [tl, th] = this.relTarget(d);
      if (this.long && !canon(th)) return false;
      const c = this.cond(op & 15);
      this.endFlush();
      this.emit(
        `if (${c}) { ${this.setRipConst(tl, th)} } else { ${this.setRipConst(d.nextLo, d.nextHi)} } return ${n};`,
      );
      return true;
    }
    if (op === 0xeb || op === 0xe9) {
      const [tl, th] = this.relTarget(d);
      if (this.long && !canon(th)) return false;
      this.endFlush();
      this.emit(`${this.setRipConst(tl, th)} return ${n};`);
      return true;
    }
    if (op === 0xe8) {
      if (!this.stackOk() || d.osz === 2) return false;
      const [tl, th] = this.relTarget(d);
      if (this.long && !canon(th)) return false;
      this.push(this.long ? 8 : 4, `${d.nextLo}`, `${d.nextHi}`);
      this.endFlush();
      this.emit(`${this.setRipConst(tl, th)} return ${n};`);
      return true;
    }
    if (op === 0xc3 || op === 0xc2) {
      if (!this.stackOk() || d.osz === 2) return false;
      const s = this.long ? 8 : 4;
      const v = this.local(`a${this.k}`),
        vh = this.local(`ah${this.k}`);
      this.popLoad(s, v, vh);
      if (this.long) this.emit(`if (((${vh} << 16) >> 16) !== ${vh}) cpu.fault(13, 0);`);
      this.popCommit(s, op === 0xc2 ? d.imm : 0);
      this.endFlush();
      this.emit(this.long ? `S.ripLo = ${v}; S.ripHi = ${vh}; return ${n};` : `S.ripLo = ${v}; return ${n};`);
      return true;
    }
    if (op === 0xff && ((d.reg & 7) === 2 || (d.reg & 7) === 4)) {
      const call = (d.reg & 7) === 2;
      if (!this.stackOk()) return false;
      const s = this.long ? 8 : d.osz;
      if (s === 2) return false;
      const v = this.local(`a${this.k}`),
        vh = this.local(`ah${this.k}`);
      if (!this.readRM(d, s, v, vh, false)) return false;
      if (this.long) this.emit(`if (((${vh} << 16) >> 16) !== ${vh}) cpu.fault(13, 0);`);
      if (call) this.push(s, `${d.nextLo}`, `${d.nextHi}`);
      this.endFlush();
      this.emit(this.long ? `S.ripLo = ${v}; S.ripHi = ${vh}; return ${n};` : `S.ripLo = ${v}; return ${n};`);
      return true;
    }
    return false;
  }

  endFlush(): void {
    this.flush();
  }
}

function canon(hi: number): boolean {
  return (hi << 16) >> 16 === hi;
}

/**
 * Compiles decoded instructions into a Block.
 * @param insns at least one instruction; the last may be a terminator
 */
export function compileBlock(
  cpu: Cpu,
  insns: Insn[],
  key: number,
  frame: number,
  pageOff: number,
  frame2: number,
  single: boolean,
): Block {
  compileCount++;
  const g = new Gen(cpu, insns, key);
  let ended = false;
  let sys = false;
  for (let k = 0; k < insns.length; k++) {
    const d = insns[k];
    g.k = k;
    const term = isTerminator(d);
    const mark = g.out.length;
    const prodBefore = g.prod;
    g.flushAt[k] = g.flushCode(g.prod);
    g.addedAt[k] = g.added;
    g.emit(`ic = ${k};`);
    let ok = cpu.forceGeneric ? false : term ? g.terminator(d) : g.inline(d);
    if (!ok) {
      // Generic path: discard partial output, write flags, call the implementation.
      g.out.length = mark;
      g.prod = prodBefore;
      g.flush();
      g.flushAt[k] = '';
      g.addedAt[k] = k;
      g.emit(`ic = ${k};`);
      // Keep state.instructionsRetired exact for the generic path (RDTSC, interrupt delivery read it).
      if (k > g.added) {
        g.emit(`S.instructionsRetired += ${k - g.added};`);
        g.added = k;
      }
      if (term || d.bad) {
        g.emit(`return cpu.x(I[${k}]);`);
        sys = true;
      } else {
        g.emit(`cpu.x(I[${k}]);`);
      }
      ok = true;
    }
    if (term || d.bad) {
      ended = true;
      break;
    }
  }
  if (!ended) {
    const last = insns[insns.length - 1];
    g.flush();
    g.emit(`${g.setRipConst(last.nextLo, last.nextHi)} return ${insns.length - g.added};`);
  }
  const body = g.out.join('\n');
  let catchCases = '';
  for (let k = 0; k < g.flushAt.length; k++) {
    if (g.flushAt[k]) catchCases += `case ${k}: ${g.flushAt[k]} break;\n`;
  }
  const src =
    `let ${[...g.locals].join(', ')};\n` +
    `ic = 0;\n` +
    `try {\n${body}\n} catch (e) {\n if (e !== F) throw e;\n cpu.faultIc = ic;\n switch (ic) {\n${catchCases}}\n return -1;\n}`;
  const cpuAny = cpu as unknown as Record<string, unknown>;
  const user = (key & 8) !== 0;
  const factory = new Function(
    'cpu',
    'S',
    'R',
    'H',
    'dv',
    'u8',
    'RT',
    'WT',
    'TH',
    'TO',
    'I',
    'SB',
    'SBH',
    'P',
    'F',
    `return function block() {\n${src}\n};`,
  ) as (...args: unknown[]) => () => number;
  const s = cpu.state;
  const fn = factory(
    cpu,
    s,
    s.gprLo,
    s.gprHi,
    cpu.dv,
    cpu.u8,
    user ? cpuAny.tagRU : cpuAny.tagRK,
    user ? cpuAny.tagWU : cpuAny.tagWK,
    cpu.tlbHi,
    cpu.tlbOff,
    insns,
    s.segBaseLo,
    s.segBaseHi,
    PARITY,
    cpu.faultSentinel,
  );
  const first = insns[0];
  return {
    fn,
    insns,
    n: insns.length,
    ripLo: first.ripLo,
    ripHi: first.ripHi,
    key,
    frame,
    pageOff,
    frame2,
    single,
    valid: true,
    bp: false,
    drbp: 0,
    sys,
    addedAt: g.addedAt,
    c0: null,
    c0lo: 0,
    c0hi: 0,
    c0ep: 0,
    c1: null,
    c1lo: 0,
    c1hi: 0,
    c1ep: 0,
  };
}
