/**
 * DWARF call frame information (.eh_frame and .debug_frame) for unwinding
 * guest stacks in the debugger (cold path).
 *
 * Follows DWARF 4/5 §6.4 (CIE/FDE layout, call frame instructions, register
 * rules), the LSB's .eh_frame format (CIE id 0, augmentation "zR"/"zPLR"/"S",
 * DW_EH_PE pointer encodings) and the psABIs' DWARF register numbers (x86-64:
 * 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16
 * return address; i386: 0 eax, 1 ecx, 2 edx, 3 ebx, 4 esp, 5 ebp, 6 esi, 7 edi,
 * 8 return address).
 */
import { ElfFile, findSection, sectionContents } from './elf';
import { ImageError, hex } from './errors';
import { ByteCursor as Reader } from './byte-cursor';

/** How to recover one register of the caller (DWARF §6.4.1). */
export type RegisterRule =
  | { kind: 'undefined' }
  | { kind: 'same' }
  | { kind: 'offset'; offset: number }
  | { kind: 'valOffset'; offset: number }
  | { kind: 'register'; reg: number }
  | { kind: 'expression'; expr: Uint8Array }
  | { kind: 'valExpression'; expr: Uint8Array };

/** How to compute the CFA. */
export type CfaRule =
  { kind: 'regOffset'; reg: number; offset: number } | { kind: 'expression'; expr: Uint8Array };

/** One row of the unwind table: the rules valid at a pc. */
export interface UnwindRow {
  /** First address the row applies to. */
  loc: bigint;
  cfa: CfaRule;
  /** Rules for registers that have one (others: same value, except as the CIE says). */
  registers: Map<number, RegisterRule>;
  /** Return-address register number of the CIE. */
  returnAddressRegister: number;
}

interface Cie {
  offset: number;
  codeAlign: number;
  dataAlign: number;
  raReg: number;
  fdeEncoding: number;
  lsdaEncoding: number;
  addressSize: number;
  signalFrame: boolean;
  hasAugData: boolean;
  instructions: Uint8Array;
}

/** One FDE: the code range [start, end) and its instructions. */
export interface Fde {
  start: bigint;
  end: bigint;
  /** Section the FDE came from. */
  section: '.eh_frame' | '.debug_frame';
  cie: Cie;
  instructions: Uint8Array;
}

/** Result of one unwinding step. */
export interface UnwindStep {
  /** Canonical frame address (the caller's stack pointer on x86). */
  cfa: bigint;
  /** The caller's pc (return address); undefined at the outermost frame (RA rule undefined). */
  returnAddress: bigint | undefined;
  /** Recovered caller registers by DWARF number (the stack pointer is the CFA). */
  registers: Map<number, bigint>;
}

const DW_EH_PE_omit = 0xff;

const U64 = (1n << 64n) - 1n;

/** Reads a DW_EH_PE-encoded pointer; `fieldAddr` is the virtual address of the field (for pcrel). */
function readEncoded(
  r: Reader,
  enc: number,
  addressSize: number,
  fieldAddr: bigint,
  dataRel: bigint,
): bigint {
  if (enc === DW_EH_PE_omit) return 0n;
  let v: bigint;
  switch (enc & 0x0f) {
    case 0x00:
      v = addressSize === 8 ? r.u64() : BigInt(r.u32());
      break;
    case 0x01:
      v = BigInt(r.uleb());
      break;
    case 0x02:
      v = BigInt(r.u16());
      break;
    case 0x03:
      v = BigInt(r.u32());
      break;
    case 0x04:
      v = r.u64();
      break;
    case 0x09:
      v = BigInt(r.sleb());
      break;
    case 0x0a:
      v = BigInt((r.u16() << 16) >> 16);
      break;
    case 0x0b:
      v = BigInt(r.u32() | 0);
      break;
    case 0x0c:
      v = BigInt.asIntN(64, r.u64());
      break;
    default:
      throw new ImageError(`${r.section}: unsupported pointer encoding ${hex(enc)}`);
  }
  switch (enc & 0x70) {
    case 0x00:
      break;
    case 0x10:
      v += fieldAddr;
      break;
    case 0x30:
      v += dataRel;
      break;
    default:
      throw new ImageError(`${r.section}: unsupported pointer application ${hex(enc & 0x70)}`);
  }
  v &= addressSize === 8 ? U64 : 0xffffffffn;
  return v;
}

/**
 * Call frame information of an ELF file: FDEs from .eh_frame and .debug_frame,
 * sorted for lookup, with the rule table at any pc and one-step unwinding.
 */
export class CallFrameInfo {
  /** FDEs sorted by start address. */
  readonly fdes: Fde[];
  private readonly addressSize: number;

  private constructor(fdes: Fde[], addressSize: number) {
    this.fdes = fdes.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.addressSize = addressSize;
  }

  /**
   * Reads .eh_frame and .debug_frame (compressed sections inflated).
   * @param offset load offset added to every code address (default 0).
   * @throws ImageError for a malformed CIE/FDE, naming the section and entry offset.
   */
  static fromElf(elf: ElfFile, offset = 0n): CallFrameInfo {
    const addressSize = elf.header.bits === 64 ? 8 : 4;
    const fdes: Fde[] = [];
    const eh = findSection(elf, '.eh_frame');
    if (eh && eh.type !== 8) parseFrames(sectionContents(elf, eh), eh.addr, '.eh_frame', addressSize, fdes);
    const df = findSection(elf, '.debug_frame');
    if (df) parseFrames(sectionContents(elf, df), 0n, '.debug_frame', addressSize, fdes);
    if (offset !== 0n) {
      const m = addressSize === 8 ? U64 : 0xffffffffn;
      for (const f of fdes) {
        f.start = (f.start + offset) & m;
        f.end = (f.end + offset) & m;
      }
    }
    return new CallFrameInfo(fdes, addressSize);
  }

  /** The FDE covering `pc`, or undefined. */
  findFde(pc: bigint): Fde | undefined {
    const f = this.fdes;
    let lo = 0;
    let hi = f.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (f[mid].start <= pc) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let k = idx; k >= 0 && k > idx - 4; k--) if (pc >= f[k].start && pc < f[k].end) return f[k];
    return undefined;
  }

  /**
   * The unwind rules in effect at `pc` (CIE initial instructions, then the FDE's up to `pc`).
   * @returns undefined when no FDE covers `pc`.
   * @throws ImageError for malformed call frame instructions.
   */
  rowAt(pc: bigint): UnwindRow | undefined {
    const fde = this.findFde(pc);
    if (!fde) return undefined;
    return executeRow(fde, pc, this.addressSize);
  }

  /**
   * Every row of an FDE's table (the LOC lines `readelf --debug-dump=frames-interp` prints).
   */
  rows(fde: Fde): UnwindRow[] {
    const out: UnwindRow[] = [];
    executeRow(fde, fde.end, this.addressSize, out);
    return out;
  }

  /**
   * Unwinds one frame.
   * @param pc the frame's pc. For frames other than the innermost (and not
   *   signal frames), pass `callerFrame` true: the FDE is then looked up at pc-1,
   *   since a return address may lie just past its function.
   * @param readReg value of a DWARF-numbered register in this frame, or undefined if unknown.
   * @param readMem reads `size` bytes (4 or 8) little-endian at a guest virtual address, or undefined when unmapped.
   * @returns the CFA, the caller's pc and recovered registers; undefined when no FDE covers pc or a needed value is unknown.
   */
  unwindStep(
    pc: bigint,
    readReg: (reg: number) => bigint | undefined,
    readMem: (addr: bigint, size: number) => bigint | undefined,
    callerFrame = false,
  ): UnwindStep | undefined {
    const lookup = callerFrame && pc > 0n ? pc - 1n : pc;
    let row: UnwindRow | undefined;
    try {
      row = this.rowAt(lookup);
    } catch {
      return undefined;
    }
    if (!row) return undefined;
    const size = this.addressSize;
    const mask = size === 8 ? U64 : 0xffffffffn;
    let cfa: bigint | undefined;
    if (row.cfa.kind === 'regOffset') {
      const r = readReg(row.cfa.reg);
      if (r === undefined) return undefined;
      cfa = (r + BigInt(row.cfa.offset)) & mask;
    } else cfa = evalExpr(row.cfa.expr, size, readReg, readMem, undefined);
    if (cfa === undefined) return undefined;
    const regs = new Map<number, bigint>();
    let ra: bigint | undefined;
    const raRule = row.registers.get(row.returnAddressRegister);
    for (const [reg, rule] of row.registers) {
      let v: bigint | undefined;
      switch (rule.kind) {
        case 'undefined':
          v = undefined;
          break;
        case 'same':
          v = readReg(reg);
          break;
        case 'offset':
          v = readMem((cfa + BigInt(rule.offset)) & mask, size);
          break;
        case 'valOffset':
          v = (cfa + BigInt(rule.offset)) & mask;
          break;
        case 'register':
          v = readReg(rule.reg);
          break;
        case 'expression': {
          const a = evalExpr(rule.expr, size, readReg, readMem, cfa);
          v = a === undefined ? undefined : readMem(a, size);
          break;
        }
        case 'valExpression':
          v = evalExpr(rule.expr, size, readReg, readMem, cfa);
          break;
      }
      if (v !== undefined) regs.set(reg, v & mask);
      if (reg === row.returnAddressRegister) ra = v === undefined ? undefined : v & mask;
    }
    if (raRule === undefined) ra = undefined;
    // The caller's stack pointer is the CFA (x86 psABIs).
    regs.set(size === 8 ? 7 : 4, cfa);
    return { cfa, returnAddress: ra, registers: regs };
  }
}

function parseFrames(
  data: Uint8Array,
  sectionAddr: bigint,
  section: '.eh_frame' | '.debug_frame',
  addressSize: number,
  out: Fde[],
): void {
  const isEh = section === '.eh_frame';
  const cies = new Map<number, Cie>();
  let off = 0;
  let guard = 0;
  while (off + 4 <= data.length) {
    if (++guard > 10_000_000) throw new ImageError(`${section}: too many entries`);
    const r = new Reader(data, off, data.length, `${section} entry at ${hex(off)}`);
    let len = r.u32();
    let offSize = 4;
    if (len === 0) {
      if (isEh) break; // terminator
      off += 4;
      continue;
    }
    if (len === 0xffffffff) {
      const l = r.u64();
      if (l > BigInt(data.length))
        throw new ImageError(`${section} entry at ${hex(off)} extends beyond the section`);
      len = Number(l);
      offSize = 8;
    }
    const bodyStart = r.pos;
    const end = bodyStart + len;
    if (end > data.length) throw new ImageError(`${section} entry at ${hex(off)} extends beyond the section`);
    r.end = end;
    const idPos = r.pos;
    const id = offSize === 8 ? r.u64() : BigInt(r.u32());
    const isCie = isEh ? id === 0n : id === (offSize === 8 ? U64 : 0xffffffffn);
    if (isCie) {
      cies.set(off, parseCie(r, off, isEh, addressSize, end));
    } else {
      const cieOff = isEh ? idPos - Number(id) : Number(id);
      let cie = cies.get(cieOff);
      if (!cie) {
        if (cieOff < 0 || cieOff >= data.length)
          throw new ImageError(
            `${section} FDE at ${hex(off)} points to CIE ${hex(cieOff)} outside the section`,
          );
        const cr = new Reader(data, cieOff, data.length, `${section} CIE at ${hex(cieOff)}`);
        const clen = cr.u32();
        if (clen === 0xffffffff) cr.u64();
        cr.end = Math.min(data.length, cr.pos + (clen === 0xffffffff ? 0 : clen));
        const cid = clen === 0xffffffff ? cr.u64() : BigInt(cr.u32());
        if (isEh ? cid !== 0n : cid !== 0xffffffffn && cid !== U64)
          throw new ImageError(`${section} FDE at ${hex(off)} points to ${hex(cieOff)}, which is not a CIE`);
        cie = parseCie(cr, cieOff, isEh, addressSize, cr.end);
        cies.set(cieOff, cie);
      }
      const fieldAddr = sectionAddr + BigInt(r.pos);
      const enc = isEh ? cie.fdeEncoding : 0;
      const start = readEncoded(r, enc, cie.addressSize, fieldAddr, 0n);
      const range = readEncoded(r, enc & 0x0f, cie.addressSize, 0n, 0n);
      if (cie.hasAugData) {
        const n = r.uleb();
        r.bytes(n);
      }
      const instructions = r.bytes(end - r.pos);
      if (start !== 0n || !isEh) out.push({ start, end: start + range, section, cie, instructions });
    }
    off = end;
  }
}

function parseCie(r: Reader, off: number, isEh: boolean, addressSize: number, end: number): Cie {
  const version = r.u8();
  if (version !== 1 && version !== 3 && version !== 4)
    throw new ImageError(`${r.section}: CIE at ${hex(off)} has unsupported version ${version}`);
  const aug = r.cstr();
  let asz = addressSize;
  if (version === 4) {
    asz = r.u8();
    r.u8(); // segment selector size
    if (asz !== 4 && asz !== 8)
      throw new ImageError(`${r.section}: CIE address size ${asz} is not supported`);
  }
  if (aug.includes('eh')) asz === 8 ? r.u64() : r.u32(); // old GCC "eh" augmentation: pointer to EH data
  const codeAlign = r.uleb();
  const dataAlign = r.sleb();
  const raReg = version === 1 ? r.u8() : r.uleb();
  const cie: Cie = {
    offset: off,
    codeAlign,
    dataAlign,
    raReg,
    fdeEncoding: 0,
    lsdaEncoding: DW_EH_PE_omit,
    addressSize: asz,
    signalFrame: false,
    hasAugData: false,
    instructions: new Uint8Array(0),
  };
  if (aug.startsWith('z')) {
    cie.hasAugData = true;
    const n = r.uleb();
    const augEnd = r.pos + n;
    if (augEnd > end) throw new ImageError(`${r.section}: CIE augmentation data runs past the entry`);
    for (const ch of aug.slice(1)) {
      if (ch === 'R') cie.fdeEncoding = r.u8();
      else if (ch === 'L') cie.lsdaEncoding = r.u8();
      else if (ch === 'P') {
        const enc = r.u8();
        readEncoded(r, enc & 0x7f, asz, 0n, 0n);
      } else if (ch === 'S') cie.signalFrame = true;
      else break; // unknown: the length lets us skip the rest
    }
    r.pos = augEnd;
  } else if (aug !== '' && aug !== 'eh' && isEh) {
    throw new ImageError(`${r.section}: CIE augmentation "${aug}" is not supported`);
  }
  cie.instructions = r.bytes(end - r.pos);
  return cie;
}

/** Runs CIE then FDE instructions up to `pc`; collects every row in `rowsOut` when given. */
function executeRow(fde: Fde, pc: bigint, addressSize: number, rowsOut?: UnwindRow[]): UnwindRow {
  const cie = fde.cie;
  const what = `${fde.section} FDE for ${hex(fde.start)}`;
  let cfa: CfaRule = { kind: 'regOffset', reg: 0, offset: 0 };
  let regs = new Map<number, RegisterRule>();
  let loc = fde.start;
  const stack: { cfa: CfaRule; regs: Map<number, RegisterRule> }[] = [];
  let initial = new Map<number, RegisterRule>();
  const snapshot = (): UnwindRow => ({
    loc,
    cfa,
    registers: new Map(regs),
    returnAddressRegister: cie.raReg,
  });

  const run = (code: Uint8Array, isCie: boolean): boolean => {
    const r = new Reader(code, 0, code.length, what);
    while (r.pos < r.end) {
      const op = r.u8();
      const hi = op & 0xc0;
      const low = op & 0x3f;
      let advance = -1n;
      if (hi === 0x40) advance = BigInt(low * cie.codeAlign);
      else if (hi === 0x80) regs.set(low, { kind: 'offset', offset: r.uleb() * cie.dataAlign });
      else if (hi === 0xc0) restore(low);
      else
        switch (op) {
          case 0x00:
            break;
          case 0x01: {
            const nl = cie.addressSize === 8 ? r.u64() : BigInt(r.u32());
            advance = nl - loc;
            break;
          }
          case 0x02:
            advance = BigInt(r.u8() * cie.codeAlign);
            break;
          case 0x03:
            advance = BigInt(r.u16() * cie.codeAlign);
            break;
          case 0x04:
            advance = BigInt(r.u32() * cie.codeAlign);
            break;
          case 0x05: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'offset', offset: r.uleb() * cie.dataAlign });
            break;
          }
          case 0x06:
            restore(r.uleb());
            break;
          case 0x07:
            regs.set(r.uleb(), { kind: 'undefined' });
            break;
          case 0x08:
            regs.set(r.uleb(), { kind: 'same' });
            break;
          case 0x09: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'register', reg: r.uleb() });
            break;
          }
          case 0x0a:
            if (stack.length > 1000) throw new ImageError(`${what}: remember_state nesting is absurd`);
            stack.push({ cfa, regs: new Map(regs) });
            break;
          case 0x0b: {
            const s = stack.pop();
            if (!s) throw new ImageError(`${what}: restore_state without remember_state`);
            cfa = s.cfa;
            regs = s.regs;
            break;
          }
          case 0x0c: {
            const reg = r.uleb();
            cfa = { kind: 'regOffset', reg, offset: r.uleb() };
            break;
          }
          case 0x0d:
            cfa = { kind: 'regOffset', reg: r.uleb(), offset: cfa.kind === 'regOffset' ? cfa.offset : 0 };
            break;
          case 0x0e:
            cfa = { kind: 'regOffset', reg: cfa.kind === 'regOffset' ? cfa.reg : 0, offset: r.uleb() };
            break;
          case 0x0f:
            cfa = { kind: 'expression', expr: r.bytes(r.uleb()) };
            break;
          case 0x10: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'expression', expr: r.bytes(r.uleb()) });
            break;
          }
          case 0x11: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'offset', offset: r.sleb() * cie.dataAlign });
            break;
          }
          case 0x12: {
            const reg = r.uleb();
            cfa = { kind: 'regOffset', reg, offset: r.sleb() * cie.dataAlign };
            break;
          }
          case 0x13:
            cfa = {
              kind: 'regOffset',
              reg: cfa.kind === 'regOffset' ? cfa.reg : 0,
              offset: r.sleb() * cie.dataAlign,
            };
            break;
          case 0x14: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'valOffset', offset: r.uleb() * cie.dataAlign });
            break;
          }
          case 0x15: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'valOffset', offset: r.sleb() * cie.dataAlign });
            break;
          }
          case 0x16: {
            const reg = r.uleb();
            regs.set(reg, { kind: 'valExpression', expr: r.bytes(r.uleb()) });
            break;
          }
          case 0x2e: // DW_CFA_GNU_args_size
            r.uleb();
            break;
          case 0x2f: {
            // DW_CFA_GNU_negative_offset_extended
            const reg = r.uleb();
            regs.set(reg, { kind: 'offset', offset: -r.uleb() * cie.dataAlign });
            break;
          }
          default:
            throw new ImageError(`${what}: unknown call frame instruction ${hex(op)}`);
        }
      if (advance >= 0n && !isCie) {
        if (rowsOut) rowsOut.push(snapshot());
        const next = loc + advance;
        if (next > pc) return true;
        loc = next;
      }
    }
    return false;
  };
  const restore = (reg: number) => {
    const init = initial.get(reg);
    if (init) regs.set(reg, init);
    else regs.delete(reg);
  };
  run(cie.instructions, true);
  initial = new Map(regs);
  const stopped = run(fde.instructions, false);
  if (rowsOut && !stopped) rowsOut.push(snapshot());
  void addressSize;
  return snapshot();
}

/**
 * Evaluates a DWARF location expression (the subset unwind rules use: literals,
 * constants, breg/reg, arithmetic and logic, comparisons, deref, dup/drop/swap/over,
 * plus_uconst, skip/bra). `cfa` is pushed first for register-rule expressions.
 * @returns the value on top of the stack, or undefined if an operation is unsupported or a value unknown.
 */
function evalExpr(
  expr: Uint8Array,
  size: number,
  readReg: (reg: number) => bigint | undefined,
  readMem: (addr: bigint, size: number) => bigint | undefined,
  cfa: bigint | undefined,
): bigint | undefined {
  const mask = size === 8 ? U64 : 0xffffffffn;
  const st: bigint[] = cfa === undefined ? [] : [cfa];
  const r = new Reader(expr, 0, expr.length, 'DWARF expression');
  let steps = 0;
  try {
    while (r.pos < r.end) {
      if (++steps > 10_000) return undefined;
      const op = r.u8();
      const pop = (): bigint => {
        const v = st.pop();
        if (v === undefined) throw new ImageError('DWARF expression stack underflow');
        return v;
      };
      if (op >= 0x30 && op <= 0x4f) st.push(BigInt(op - 0x30));
      else if (op >= 0x50 && op <= 0x6f) {
        const v = readReg(op - 0x50);
        if (v === undefined) return undefined;
        st.push(v);
      } else if (op >= 0x70 && op <= 0x8f) {
        const v = readReg(op - 0x70);
        if (v === undefined) return undefined;
        st.push((v + BigInt(r.sleb())) & mask);
      } else
        switch (op) {
          case 0x03:
            st.push(size === 8 ? r.u64() : BigInt(r.u32()));
            break;
          case 0x06: {
            const v = readMem(pop(), size);
            if (v === undefined) return undefined;
            st.push(v);
            break;
          }
          case 0x08:
            st.push(BigInt(r.u8()));
            break;
          case 0x09:
            st.push(BigInt((r.u8() << 24) >> 24) & mask);
            break;
          case 0x0a:
            st.push(BigInt(r.u16()));
            break;
          case 0x0b:
            st.push(BigInt((r.u16() << 16) >> 16) & mask);
            break;
          case 0x0c:
            st.push(BigInt(r.u32()));
            break;
          case 0x0d:
            st.push(BigInt(r.u32() | 0) & mask);
            break;
          case 0x0e:
            st.push(r.u64());
            break;
          case 0x0f:
            st.push(BigInt.asIntN(64, r.u64()) & mask);
            break;
          case 0x10:
            st.push(BigInt(r.uleb()));
            break;
          case 0x11:
            st.push(BigInt(r.sleb()) & mask);
            break;
          case 0x12:
            st.push(st[st.length - 1] ?? pop());
            break;
          case 0x13:
            pop();
            break;
          case 0x14:
            if (st.length < 2) return undefined;
            st.push(st[st.length - 2]);
            break;
          case 0x16: {
            const a = pop();
            const b = pop();
            st.push(a, b);
            break;
          }
          case 0x1a: {
            const a = pop();
            st.push(pop() & a);
            break;
          }
          case 0x1c: {
            const a = pop();
            st.push((pop() - a) & mask);
            break;
          }
          case 0x21: {
            const a = pop();
            st.push(pop() | a);
            break;
          }
          case 0x22: {
            const a = pop();
            st.push((pop() + a) & mask);
            break;
          }
          case 0x23:
            st.push((pop() + BigInt(r.uleb())) & mask);
            break;
          case 0x24: {
            const a = pop();
            st.push((pop() << a) & mask);
            break;
          }
          case 0x25: {
            const a = pop();
            st.push(pop() >> a);
            break;
          }
          case 0x27: {
            const a = pop();
            st.push(pop() ^ a);
            break;
          }
          case 0x29:
          case 0x2a:
          case 0x2b:
          case 0x2c:
          case 0x2d:
          case 0x2e: {
            const b = BigInt.asIntN(size * 8, pop());
            const a = BigInt.asIntN(size * 8, pop());
            const res = [a === b, a >= b, a > b, a <= b, a < b, a !== b][op - 0x29];
            st.push(res ? 1n : 0n);
            break;
          }
          case 0x2f: {
            const d = (r.u16() << 16) >> 16;
            r.pos += d;
            if (r.pos < 0 || r.pos > r.end) return undefined;
            break;
          }
          case 0x28: {
            const d = (r.u16() << 16) >> 16;
            if (pop() !== 0n) {
              r.pos += d;
              if (r.pos < 0 || r.pos > r.end) return undefined;
            }
            break;
          }
          case 0x96: // nop
            break;
          default:
            return undefined;
        }
    }
  } catch {
    return undefined;
  }
  return st.length > 0 ? st[st.length - 1] : undefined;
}
