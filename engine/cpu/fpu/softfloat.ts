/**
 * Soft-float core for the x87's 80-bit double-extended format (Intel SDM
 * vol. 1 ch. 4 and ch. 8: §4.2.2 formats, §4.8 NaNs and indefinites, §4.9
 * exceptions and masked responses, §8.1.5 precision and rounding control).
 *
 * Values are unpacked into `F80` records: sign (0/1), biased 15-bit exponent
 * and the 64-bit significand as unsigned 32-bit halves (`hi` bit 31 is the
 * explicit integer bit), exactly the register encoding. Every operation is
 * exact then rounded once (round to nearest even, down, up, toward zero) at
 * the precision given by `sf.pc` (24, 53 or 64 bits) with the exponent range
 * of the destination, producing the exceptions the SDM lists: IE, DE, ZE,
 * OE, UE, PE (as FSW bits 0-5) in `sf.exc`, and C1 (= "rounded up") in
 * `sf.up`. Tininess is detected after rounding and the masked underflow
 * response is a denormal (UE set only when also inexact); an unmasked
 * overflow/underflow to a register returns the result with its exponent
 * scaled by 2^-24576 / 2^+24576 (SDM §4.9.1.4-5).
 *
 * NaN rules (SDM table 4-7, x87 column): an SNaN operand raises IE and is
 * quieted; of two NaNs the QNaN wins over an SNaN, otherwise the larger
 * significand (ties: the positive one); invalid operations without NaN
 * operands return the real indefinite (-QNaN 0xC000000000000000).
 * Unsupported encodings (pseudo-NaN, pseudo-infinity, unnormal) are invalid
 * operands; pseudo-denormals are denormal operands with exponent 1.
 *
 * No allocation and no BigInt: 64-bit and wider intermediates are kept in
 * 32- or 16-bit limbs held in doubles, with module-level scratch.
 */

/** Exception bits as in FSW bits 0-5 (and FCW mask bits 0-5). */
export const enum Exc {
  IE = 1,
  DE = 2,
  ZE = 4,
  OE = 8,
  UE = 16,
  PE = 32,
}

/** An unpacked 80-bit value (the register encoding). `hi`/`lo` are unsigned 32-bit numbers. */
export class F80 {
  s = 0;
  e = 0;
  hi = 0;
  lo = 0;
  set(s: number, e: number, hi: number, lo: number): this {
    this.s = s;
    this.e = e;
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }
  copy(o: F80): this {
    this.s = o.s;
    this.e = o.e;
    this.hi = o.hi;
    this.lo = o.lo;
    return this;
  }
}

/** Operand classes (`classify`). */
export const enum K {
  ZERO = 0,
  NORMAL = 1,
  DENORMAL = 2,
  INF = 3,
  QNAN = 4,
  SNAN = 5,
  /** Pseudo-NaN, pseudo-infinity, unnormal: unsupported (SDM §8.2.2). */
  INVALID = 6,
}

export const BIAS = 16383;

/**
 * Mode and result flags of the soft-float core (module-level so the hot path
 * allocates nothing). Set `pc`/`rc`/`mask` before an operation (from FCW via
 * `sfMode`); read `exc`/`up` after it.
 */
export const sf = {
  /** Precision in bits: 24, 53 or 64. */
  pc: 64,
  /** Rounding control: 0 nearest even, 1 down, 2 up, 3 toward zero. */
  rc: 0,
  /** Exception masks (FCW bits 0-5). */
  mask: 0x3f,
  /** Exceptions raised (FSW bits 0-5), accumulated. */
  exc: 0,
  /** C1: the last rounding increased the magnitude. */
  up: false,
};

/** Sets precision, rounding and masks from an FCW value and clears `exc`/`up`. */
export function sfMode(cw: number): void {
  const p = (cw >>> 8) & 3;
  sf.pc = p === 0 ? 24 : p === 2 ? 53 : 64;
  sf.rc = (cw >>> 10) & 3;
  sf.mask = cw & 0x3f;
  sf.exc = 0;
  sf.up = false;
}

/** Classifies an unpacked value. */
export function classify(a: F80): K {
  const e = a.e;
  const j = a.hi >>> 31;
  if (e === 0x7fff) {
    if (!j) return K.INVALID;
    if ((a.hi & 0x7fffffff) === 0 && a.lo === 0) return K.INF;
    return a.hi & 0x40000000 ? K.QNAN : K.SNAN;
  }
  if (e === 0) return (a.hi | a.lo) === 0 ? K.ZERO : K.DENORMAL;
  return j ? K.NORMAL : K.INVALID;
}

/** Writes the real indefinite (-QNaN, significand 0xC000000000000000). */
export function setIndefinite(out: F80): void {
  out.set(1, 0x7fff, 0xc0000000, 0);
}

/** Writes a signed infinity. */
export function setInf(out: F80, s: number): void {
  out.set(s, 0x7fff, 0x80000000, 0);
}

/** Writes a signed zero. */
export function setZero(out: F80, s: number): void {
  out.set(s, 0, 0, 0);
}

// ---- NaN propagation ----

/** Result of an operation with NaN operand(s) a (and b, if `two`): SDM table 4-7. Sets IE for SNaNs. */
export function propagateNaN(a: F80, ka: K, b: F80, kb: K, two: boolean, out: F80): void {
  if (ka === K.SNAN || (two && kb === K.SNAN)) sf.exc |= Exc.IE;
  let pick: F80;
  const na = ka === K.QNAN || ka === K.SNAN;
  const nb = two && (kb === K.QNAN || kb === K.SNAN);
  if (na && nb) {
    if (ka === K.QNAN && kb === K.SNAN) pick = a;
    else if (ka === K.SNAN && kb === K.QNAN) pick = b;
    else {
      const ah = a.hi & 0xbfffffff,
        bh = b.hi & 0xbfffffff;
      if (ah !== bh) pick = ah > bh ? a : b;
      else if (a.lo !== b.lo) pick = a.lo > b.lo ? a : b;
      else pick = a.s <= b.s ? a : b;
    }
  } else pick = na ? a : b;
  out.set(pick.s, 0x7fff, pick.hi | 0xc0000000, pick.lo);
}

/**
 * The shared start of a one-operand x87 operation (SDM tables 4-7, 8-10): an
 * unsupported encoding gives IE and the indefinite, a NaN its propagated
 * result. Returns true when `out` is final.
 */
export function unaryInvalidOrNaN(a: F80, k: K, out: F80): boolean {
  if (k === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return true;
  }
  if (k >= K.QNAN) {
    propagateNaN(a, k, a, k, false, out);
    return true;
  }
  return false;
}

// ---- Unpacked working values: normalized significand, unbounded exponent ----

let ue = 0; // exponent of the last `norm` call
let uh = 0;
let ul = 0;

/** Normalizes a finite nonzero a (denormal or pseudo-denormal) into ue/uh/ul. */
function norm(a: F80): void {
  let e = a.e === 0 ? 1 : a.e;
  let h = a.hi,
    l = a.lo;
  if (h === 0) {
    h = l;
    l = 0;
    e -= 32;
  }
  const z = Math.clz32(h);
  if (z) {
    h = ((h << z) | (l >>> (32 - z))) >>> 0;
    l = (l << z) >>> 0;
    e -= z;
  }
  ue = e;
  uh = h;
  ul = l;
}

// ---- Rounding ----

/** Rounds (sign, e, hi:lo:g) and packs into out. hi:lo:g is a 96-bit significand, g's bit 0 may be a sticky jam. */
let rExact = true;

/**
 * Rounds the exact value (-1)^s * 0.hi:lo:g * 2^(e - BIAS + 1) (hi bit 31
 * normally set; e is an unbounded biased exponent) to `p` significand bits
 * in the exponent range [emin, emax] (biased, as extended exponents) and
 * writes the extended encoding into `out` (a result that is denormal in the
 * range has its integer bit clear and e = emin - 1 adjusted by the caller's
 * packer: for the extended format e = 0). `reg`: destination is a register
 * (unmasked OE/UE deliver the scaled result); otherwise the caller stores
 * nothing on unmasked OE/UE.
 */
export function roundPack(
  s: number,
  e: number,
  hi: number,
  lo: number,
  g: number,
  p: number,
  emin: number,
  emax: number,
  reg: boolean,
  out: F80,
): void {
  hi >>>= 0;
  lo >>>= 0;
  g >>>= 0;
  if ((hi | lo | g) === 0) {
    setZero(out, s);
    rExact = true;
    return;
  }
  // Normalize (callers may hand in leading zeros).
  if (hi === 0) {
    hi = lo;
    lo = g;
    g = 0;
    e -= 32;
    if (hi === 0) {
      hi = lo;
      lo = 0;
      e -= 32;
    }
  }
  let z = Math.clz32(hi);
  if (z) {
    hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
    lo = ((lo << z) | (g >>> (32 - z))) >>> 0;
    g = ((g << z) | (g & 1)) >>> 0; // keep the sticky jam
    e -= z;
  }
  const rc = sf.rc;
  // Unmasked responses scale by 2^+-24576; a result still out of range gets the masked response (host behaviour).
  const unmaskedUE = reg && !(sf.mask & Exc.UE) && e + 24576 >= emin;
  if (reg && !(sf.mask & Exc.UE) && e + 24576 < emin) {
    // Unmasked underflow beyond the scaling range (only FSCALE gets here): a signed zero, UE and PE.
    sf.exc |= Exc.UE | Exc.PE;
    sf.up = false;
    rExact = false;
    setZero(out, s);
    return;
  }
  if (reg && !(sf.mask & Exc.OE) && e - 24576 > emax) {
    // Unmasked overflow beyond the scaling range (FSCALE): infinity, OE and PE, C1 = 1.
    sf.exc |= Exc.OE | Exc.PE;
    sf.up = true;
    rExact = false;
    setInf(out, s);
    return;
  }
  let tiny = false;
  if (e < emin) {
    // Unmasked underflow: round normally, scale the exponent up (SDM §4.9.1.5). Tininess is after
    // rounding here too: a value that rounds up to the smallest normal is not tiny (host behaviour).
    if (unmaskedUE) roundAt(s, hi, lo, g, p, rc);
    if (unmaskedUE && !(e === emin - 1 && rCarry)) {
      e += rCarry;
      sf.exc |= Exc.UE;
      if (!rExact) {
        sf.exc |= Exc.PE;
      }
      out.set(s, e + 24576, rH, rL);
      return;
    }
    // Tininess after rounding: would the result, rounded with unbounded exponent, still be < 2^emin?
    if (e < emin - 1) tiny = true;
    else {
      roundAt(s, hi, lo, g, p, rc);
      tiny = rCarry === 0;
    }
    // Denormalize: shift right by emin - e with sticky.
    shr96(hi, lo, g, emin - e);
    hi = sh;
    lo = sl;
    g = sg;
    e = emin;
  }
  roundAt(s, hi, lo, g, p, rc);
  hi = rH;
  lo = rL;
  e += rCarry;
  if (!rExact) sf.exc |= Exc.PE;
  // Masked underflow: tiny and inexact; unmasked (memory destination, nothing stored): tiny.
  if (tiny && (!rExact || !(sf.mask & Exc.UE))) sf.exc |= Exc.UE;
  if (e > emax) {
    if (reg && !(sf.mask & Exc.OE) && e - 24576 <= emax) {
      sf.exc |= Exc.OE | (rExact ? 0 : Exc.PE);
      out.set(s, e - 24576, hi, lo);
      return;
    }
    sf.exc |= Exc.OE | Exc.PE;
    rExact = false;
    // Masked overflow: infinity or the largest finite value by rounding direction.
    const toInf = rc === 0 || (rc === 2 && s === 0) || (rc === 1 && s !== 0);
    sf.up = toInf;
    if (toInf) setInf(out, s);
    else {
      maxAt(p);
      out.set(s, emax, rH, rL);
    }
    return;
  }
  if (!(hi >>> 31)) e = emin - 1; // denormal (or zero) in this format: the packer reads emin - 1
  if ((hi | lo) === 0) e = emin - 1;
  out.set(s, e, hi, lo);
}

let sh = 0,
  sl = 0,
  sg = 0;

/** (hi:lo:g) >> n with sticky into sh/sl/sg (sticky jammed into sg bit 0). */
function shr96(hi: number, lo: number, g: number, n: number): void {
  if (n <= 0) {
    sh = hi;
    sl = lo;
    sg = g;
    return;
  }
  let st = 0;
  while (n >= 32) {
    st |= g;
    g = lo;
    lo = hi;
    hi = 0;
    n -= 32;
    if (n >= 32 && (hi | lo | g) === 0) break;
  }
  if (n >= 32) {
    sh = 0;
    sl = 0;
    sg = st | g | lo | hi ? 1 : 0;
    return;
  }
  if (n > 0) {
    st |= (g << (32 - n)) >>> 0;
    g = ((g >>> n) | (lo << (32 - n))) >>> 0;
    lo = ((lo >>> n) | (hi << (32 - n))) >>> 0;
    hi = hi >>> n;
  }
  sh = hi >>> 0;
  sl = lo >>> 0;
  sg = (g | (st ? 1 : 0)) >>> 0;
}

let rH = 0,
  rL = 0,
  rCarry = 0;

/** Rounds hi:lo:g to p bits (1-64) by rc into rH/rL; rCarry = 1 when it carried out (rH = 0x80000000), rExact, sf.up. */
function roundAt(s: number, hi: number, lo: number, g: number, p: number, rc: number): void {
  const pos = 64 - p; // bit index of the kept lsb within the 64-bit significand
  let lsb: number, rnd: number, stk: number;
  if (pos === 0) {
    lsb = lo & 1;
    rnd = g >>> 31;
    stk = g & 0x7fffffff;
  } else if (pos <= 32) {
    lsb = pos === 32 ? hi & 1 : (lo >>> pos) & 1;
    rnd = (lo >>> (pos - 1)) & 1;
    stk = (pos === 1 ? 0 : lo & ((1 << (pos - 1)) - 1)) | g;
    lo = pos === 32 ? 0 : (lo & ~((1 << pos) - 1)) >>> 0;
  } else {
    const q = pos - 32;
    lsb = (hi >>> q) & 1;
    rnd = (hi >>> (q - 1)) & 1;
    stk = (q === 1 ? 0 : hi & ((1 << (q - 1)) - 1)) | lo | g;
    lo = 0;
    hi = (hi & ~((1 << q) - 1)) >>> 0;
  }
  rExact = rnd === 0 && stk === 0;
  let inc = false;
  if (!rExact) {
    if (rc === 0) inc = rnd !== 0 && (stk !== 0 || lsb !== 0);
    else if (rc === 1) inc = s !== 0;
    else if (rc === 2) inc = s === 0;
  }
  sf.up = inc;
  rCarry = 0;
  if (inc) {
    if (pos < 32) {
      const t = lo + 2 ** pos;
      lo = t >>> 0;
      if (t > 0xffffffff) hi += 1;
    } else hi += 2 ** (pos - 32);
    if (hi > 0xffffffff) {
      hi = 0x80000000;
      rCarry = 1;
    }
  }
  rH = hi >>> 0;
  rL = lo >>> 0;
}

/** Largest significand with p bits into rH/rL. */
function maxAt(p: number): void {
  if (p >= 32) {
    rH = 0xffffffff;
    rL = p === 64 ? 0xffffffff : (0xffffffff << (64 - p)) >>> 0;
  } else {
    rH = (0xffffffff << (32 - p)) >>> 0;
    rL = 0;
  }
}

/** Rounds an exact extended value to the extended format at precision sf.pc (register destination). */
function packReg(s: number, e: number, hi: number, lo: number, g: number, out: F80, p: number): void {
  roundPack(s, e, hi, lo, g, p, 1, 0x7ffe, true, out);
}

// ---- Arithmetic ----

const tA = new F80();
const tB = new F80();

/** out = a + b (sub: a - b), at precision `sf.pc`. SDM FADD/FSUB. */
export function add(a: F80, b: F80, sub: boolean, out: F80): void {
  addP(a, b, sub, out, sf.pc);
}

function addP(a: F80, b: F80, sub: boolean, out: F80, p: number): void {
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    propagateNaN(a, ka, b, kb, true, out);
    return;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  const sb = sub ? b.s ^ 1 : b.s;
  if (ka === K.INF || kb === K.INF) {
    if (ka === K.INF && kb === K.INF && a.s !== sb) {
      sf.exc |= Exc.IE;
      setIndefinite(out);
    } else setInf(out, ka === K.INF ? a.s : sb);
    return;
  }
  if (ka === K.ZERO && kb === K.ZERO) {
    setZero(out, a.s === sb ? a.s : sf.rc === 1 ? 1 : 0);
    return;
  }
  if (kb === K.ZERO) {
    norm(a);
    packReg(a.s, ue, uh, ul, 0, out, p);
    return;
  }
  if (ka === K.ZERO) {
    norm(b);
    packReg(sb, ue, uh, ul, 0, out, p);
    return;
  }
  norm(a);
  let ea = ue,
    ah = uh,
    al = ul;
  norm(b);
  let eb = ue,
    bh = uh,
    bl = ul;
  let s = a.s;
  let s2 = sb;
  // Order by magnitude: a >= b.
  if (eb > ea || (eb === ea && (bh > ah || (bh === ah && bl > al)))) {
    let t = ea;
    ea = eb;
    eb = t;
    t = ah;
    ah = bh;
    bh = t;
    t = al;
    al = bl;
    bl = t;
    t = s;
    s = s2;
    s2 = t;
  }
  shr96(bh, bl, 0, ea - eb);
  if (s === s2) {
    let g = sg;
    let l = al + sl;
    let h = ah + sh;
    if (l > 0xffffffff) {
      l -= 4294967296;
      h += 1;
    }
    if (h > 0xffffffff) {
      h -= 4294967296;
      g = ((g >>> 1) | (g & 1) | ((l & 1) << 31)) >>> 0;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = (h >>> 1) | 0x80000000;
      ea += 1;
    }
    packReg(s, ea, h, l, g, out, p);
    return;
  }
  // Magnitude subtraction a - b (a >= b).
  let g = 0 - sg;
  let borrow = 0;
  if (g < 0) {
    g += 4294967296;
    borrow = 1;
  }
  let l = al - sl - borrow;
  borrow = 0;
  if (l < 0) {
    l += 4294967296;
    borrow = 1;
  }
  const h = ah - sh - borrow;
  if ((h | l | g) === 0) {
    setZero(out, sf.rc === 1 ? 1 : 0);
    return;
  }
  packReg(s, ea, h, l, g, out, p);
}

const col = new Float64Array(8);
const limbA = new Float64Array(4);
const limbB = new Float64Array(4);
const prod = new Float64Array(8);

/** 64x64 -> 128-bit product of (ah:al) and (bh:bl) into prod[0..7] (16-bit limbs, least significant first). */
function mul128(ah: number, al: number, bh: number, bl: number): void {
  limbA[0] = al & 0xffff;
  limbA[1] = al >>> 16;
  limbA[2] = ah & 0xffff;
  limbA[3] = ah >>> 16;
  limbB[0] = bl & 0xffff;
  limbB[1] = bl >>> 16;
  limbB[2] = bh & 0xffff;
  limbB[3] = bh >>> 16;
  col.fill(0);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) col[i + j] += limbA[i] * limbB[j];
  let c = 0;
  for (let k = 0; k < 8; k++) {
    const v = col[k] + c;
    prod[k] = v % 65536;
    c = Math.floor(v / 65536);
  }
}

/** out = a * b at precision `sf.pc`. SDM FMUL. */
export function mul(a: F80, b: F80, out: F80): void {
  mulP(a, b, out, sf.pc);
}

function mulP(a: F80, b: F80, out: F80, p: number): void {
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    propagateNaN(a, ka, b, kb, true, out);
    return;
  }
  const s = a.s ^ b.s;
  if ((ka === K.INF && kb === K.ZERO) || (ka === K.ZERO && kb === K.INF)) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  if (ka === K.INF || kb === K.INF) {
    setInf(out, s);
    return;
  }
  if (ka === K.ZERO || kb === K.ZERO) {
    setZero(out, s);
    return;
  }
  norm(a);
  const ea = ue,
    ah = uh,
    al = ul;
  norm(b);
  mul128(ah, al, uh, ul);
  const h = prod[7] * 65536 + prod[6];
  const l = prod[5] * 65536 + prod[4];
  const g = prod[3] * 65536 + prod[2];
  const st = prod[1] + prod[0] ? 1 : 0;
  // Product value h:l:g.. / 2^126 in [1,4): exponent ea + eb - BIAS + 1 with the point after bit 127.
  packReg(s, ea + ue - BIAS + 1, h, l, g | st, out, p);
}

/** out = a / b at precision `sf.pc`. SDM FDIV (ZE for finite nonzero / 0). */
export function div(a: F80, b: F80, out: F80): void {
  divP(a, b, out, sf.pc);
}

function divP(a: F80, b: F80, out: F80, p: number): void {
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    propagateNaN(a, ka, b, kb, true, out);
    return;
  }
  const s = a.s ^ b.s;
  if ((ka === K.INF && kb === K.INF) || (ka === K.ZERO && kb === K.ZERO)) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (kb === K.ZERO) {
    // Divide by zero: ZE only, no DE for a denormal dividend (host behaviour).
    if (ka !== K.INF) sf.exc |= Exc.ZE;
    setInf(out, s);
    return;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  if (ka === K.INF) {
    setInf(out, s);
    return;
  }
  if (ka === K.ZERO || kb === K.INF) {
    setZero(out, s);
    return;
  }
  norm(a);
  let e = ue;
  let rh = uh,
    rl = ul;
  norm(b);
  e = e - ue + BIAS;
  const bh = uh,
    bl = ul;
  if (rh < bh || (rh === bh && rl < bl)) {
    rh = rh * 2 + (rl >>> 31);
    rl = (rl << 1) >>> 0;
    e -= 1;
  }
  let qh = 0,
    ql = 0,
    qg = 0;
  for (let i = 0; i < 66; i++) {
    let bit = 0;
    if (rh > bh || (rh === bh && rl >= bl)) {
      bit = 1;
      rl -= bl;
      rh -= bh;
      if (rl < 0) {
        rl += 4294967296;
        rh -= 1;
      }
    }
    if (i < 32) qh = qh * 2 + bit;
    else if (i < 64) ql = ql * 2 + bit;
    else qg = qg * 2 + bit;
    rh = rh * 2 + (rl >>> 31);
    rl = (rl << 1) >>> 0;
  }
  qg = qg * 2 ** 30 + (rh + rl ? 1 : 0);
  packReg(s, e, qh, ql, qg, out, p);
}

/** out = sqrt(a) at precision `sf.pc`. SDM FSQRT (-0 -> -0, negative -> IE). */
export function sqrt(a: F80, out: F80): void {
  const ka = classify(a);
  if (unaryInvalidOrNaN(a, ka, out)) return;
  if (ka === K.ZERO) {
    out.copy(a);
    return;
  }
  if (a.s) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka === K.INF) {
    out.copy(a);
    return;
  }
  if (ka === K.DENORMAL) sf.exc |= Exc.DE;
  norm(a);
  const E = ue - BIAS;
  const odd = E & 1;
  const shift = odd ? 68 : 67; // radicand N = m << shift (132 bits)
  const mh = uh,
    ml = ul;
  let remH = 0,
    remL = 0,
    rootH = 0,
    rootL = 0;
  for (let i = 0; i < 66; i++) {
    // Next two radicand bits: positions 131 - 2i and 130 - 2i.
    let two = 0;
    for (let k = 0; k < 2; k++) {
      const pos = 131 - 2 * i - k - shift; // bit index in m
      let bit = 0;
      if (pos >= 0 && pos < 64) bit = pos >= 32 ? (mh >>> (pos - 32)) & 1 : (ml >>> pos) & 1;
      two = two * 2 + bit;
    }
    // rem = rem * 4 + two
    remH = remH * 4 + Math.floor(remL / 1073741824);
    remL = (remL % 1073741824) * 4 + two;
    // trial = root * 4 + 1
    const tH = rootH * 4 + Math.floor(rootL / 1073741824);
    const tL = (rootL % 1073741824) * 4 + 1;
    rootH = rootH * 2 + Math.floor(rootL / 2147483648);
    rootL = (rootL % 2147483648) * 2;
    if (remH > tH || (remH === tH && remL >= tL)) {
      remH -= tH;
      remL -= tL;
      if (remL < 0) {
        remL += 4294967296;
        remH -= 1;
      }
      rootL += 1;
    }
  }
  const hi = Math.floor(rootH / 4);
  const lo = (rootH % 4) * 1073741824 + Math.floor(rootL / 4);
  const g = (rootL % 4) * 1073741824 + (remH + remL ? 1 : 0);
  packReg(0, (E - odd) / 2 + BIAS, hi, lo, g, out, sf.pc);
}

/**
 * Compares a and b: 0 a < b, 1 a = b, 2 a > b, 3 unordered. `quiet`
 * (FUCOM*): IE only for SNaN operands; otherwise (FCOM*) IE for any NaN.
 * DE for denormal operands. SDM FCOM/FUCOM.
 */
export function compare(a: F80, b: F80, quiet: boolean): number {
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    return 3;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    if (!quiet || ka === K.SNAN || kb === K.SNAN) sf.exc |= Exc.IE;
    return 3;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  if (ka === K.ZERO && kb === K.ZERO) return 1;
  if (a.s !== b.s) return a.s ? 0 : 2;
  let c = 0; // magnitude order of a vs b
  if (ka === K.INF || kb === K.INF) c = ka === kb ? 0 : ka === K.INF ? 1 : -1;
  else if (ka === K.ZERO) c = -1;
  else if (kb === K.ZERO) c = 1;
  else {
    norm(a);
    const ea = ue,
      ah = uh,
      al = ul;
    norm(b);
    if (ea !== ue) c = ea > ue ? 1 : -1;
    else if (ah !== uh) c = ah > uh ? 1 : -1;
    else if (al !== ul) c = al > ul ? 1 : -1;
  }
  if (c === 0) return 1;
  if (a.s) c = -c;
  return c > 0 ? 2 : 0;
}

// ---- Conversions ----

/** Integer value -> extended, exact. (lo, hi) is a signed 64-bit two's complement integer. SDM FILD. */
export function fromInt64(lo: number, hi: number, out: F80): void {
  let s = 0;
  lo >>>= 0;
  hi >>>= 0;
  if (hi >= 0x80000000) {
    s = 1;
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  if ((hi | lo) === 0) {
    setZero(out, 0);
    return;
  }
  let e = BIAS + 63;
  if (hi === 0) {
    hi = lo;
    lo = 0;
    e -= 32;
  }
  const z = Math.clz32(hi);
  if (z) {
    hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
    lo = (lo << z) >>> 0;
    e -= z;
  }
  out.set(s, e, hi, lo);
}

function intIndefinite(bytes: number): void {
  sf.exc |= Exc.IE;
  intLo = bytes === 2 ? 0x8000 : bytes === 4 ? 0x80000000 | 0 : 0;
  intHi = bytes === 8 ? 0x80000000 | 0 : 0;
}

/** Integer result of `toInt`: low and high halves. */
export let intLo = 0;
export let intHi = 0;

/**
 * Extended -> signed integer of `bytes` (2, 4, 8) rounded by sf.rc (or
 * truncated: FISTTP), into intLo/intHi. Out of range, NaN, infinity:
 * IE and the integer indefinite (0x8000, 0x80000000, 0x8000000000000000)
 * (the caller stores nothing if IE is unmasked). SDM FIST/FISTTP.
 */
export function toInt(a: F80, bytes: number, trunc: boolean): void {
  const k = classify(a);
  if (k === K.INVALID || k >= K.INF) return intIndefinite(bytes);
  if (k === K.ZERO) {
    intLo = 0;
    intHi = 0;
    return;
  }
  // No DE for a denormal source (host behaviour, both FIST and FISTTP).
  norm(a);
  const E = ue - BIAS; // value = 1.xxx * 2^E
  const rc = trunc ? 3 : sf.rc;
  let h: number, l: number;
  if (E >= 64) return intIndefinite(bytes);
  if (E < 0) {
    // |a| < 1: the result is 0 or 1.
    let up: boolean;
    if (rc === 0) up = E === -1 && (uh !== 0x80000000 || ul !== 0);
    else if (rc === 1) up = a.s === 1;
    else if (rc === 2) up = a.s === 0;
    else up = false;
    sf.exc |= Exc.PE;
    sf.up = up;
    h = 0;
    l = up ? 1 : 0;
  } else {
    // Keep E + 1 integer bits of the 64-bit significand.
    const saveRc = sf.rc;
    sf.rc = rc;
    roundAt(a.s, uh, ul, 0, E + 1, rc);
    sf.rc = saveRc;
    if (!rExact) sf.exc |= Exc.PE;
    // Integer = rounded >> (63 - E), or 2^(E+1) on carry.
    let rh = rH,
      rl = rL;
    let e2 = E;
    if (rCarry) e2 += 1;
    if (e2 >= 64) return intIndefinite(bytes);
    const sh2 = 63 - e2;
    if (sh2 >= 32) {
      l = rh >>> (sh2 - 32);
      h = 0;
      if (sh2 === 32) l = rh;
    } else if (sh2 > 0) {
      l = ((rl >>> sh2) | (rh << (32 - sh2))) >>> 0;
      h = rh >>> sh2;
    } else {
      l = rl;
      h = rh;
    }
    rh = 0;
    rl = 0;
  }
  // Range check and two's complement.
  const maxHi = bytes === 8 ? 0x80000000 : 0;
  const maxLo = bytes === 8 ? 0 : bytes === 4 ? 0x80000000 : 0x8000;
  // magnitude must be < 2^(bits-1), or == 2^(bits-1) when negative
  const over = h > maxHi || (h === maxHi && l > maxLo) || (h === maxHi && l === maxLo && !a.s);
  if (over) {
    sf.exc &= ~Exc.PE; // an invalid result reports IE only
    sf.up = false;
    return intIndefinite(bytes);
  }
  if (a.s) {
    l = (~l + 1) >>> 0;
    h = (~h + (l === 0 ? 1 : 0)) >>> 0;
  }
  intLo = l | 0;
  intHi = bytes === 8 ? h | 0 : 0;
  if (bytes === 2) intLo &= 0xffff;
}

/** Single (IEEE binary32 bits) -> extended, exact; SNaN -> IE and quieted, denormal -> DE. SDM FLD m32. */
export function fromF32(bits: number, out: F80): void {
  const s = bits >>> 31;
  const e = (bits >>> 23) & 0xff;
  const f = bits & 0x7fffff;
  if (e === 0xff) {
    if (f === 0) setInf(out, s);
    else {
      // An SNaN stays signaling here: the operation using it raises IE and quiets it (FLD quiets it).
      if (!(f & 0x400000)) sf.exc |= Exc.IE;
      out.set(s, 0x7fff, 0x80000000 | (f << 8), 0);
    }
    return;
  }
  if (e === 0) {
    if (f === 0) {
      setZero(out, s);
      return;
    }
    sf.exc |= Exc.DE;
    const z = Math.clz32(f) - 8; // shift to put the leading bit at bit 23
    out.set(s, BIAS - 126 - z, (f << (8 + z)) >>> 0, 0);
    return;
  }
  out.set(s, e - 127 + BIAS, (0x80000000 | (f << 8)) >>> 0, 0);
}

/** Double (IEEE binary64 as lo, hi halves) -> extended, exact. SDM FLD m64. */
export function fromF64(lo: number, hi: number, out: F80): void {
  lo >>>= 0;
  hi >>>= 0;
  const s = hi >>> 31;
  const e = (hi >>> 20) & 0x7ff;
  const fh = hi & 0xfffff;
  if (e === 0x7ff) {
    if ((fh | lo) === 0) setInf(out, s);
    else {
      if (!(fh & 0x80000)) sf.exc |= Exc.IE;
      out.set(s, 0x7fff, 0x80000000 | (fh << 11) | (lo >>> 21), (lo << 11) >>> 0);
    }
    return;
  }
  let h = ((fh << 11) | (lo >>> 21)) >>> 0;
  let l = (lo << 11) >>> 0;
  if (e === 0) {
    if ((h | l) === 0) {
      setZero(out, s);
      return;
    }
    sf.exc |= Exc.DE;
    let ee = BIAS - 1022;
    if (h === 0) {
      h = l;
      l = 0;
      ee -= 32;
    }
    const z = Math.clz32(h);
    if (z) {
      h = ((h << z) | (l >>> (32 - z))) >>> 0;
      l = (l << z) >>> 0;
      ee -= z;
    }
    out.set(s, ee, h, l);
    return;
  }
  out.set(s, e - 1023 + BIAS, (h | 0x80000000) >>> 0, l);
}

/** Result bits of `toF32` / `toF64` (binary64: lo in fLo, hi in fHi). */
export let fLo = 0;
export let fHi = 0;
const tR = new F80();

/**
 * Extended -> single (bits into fLo) or double (fLo/fHi), rounded by sf.rc
 * at 24/53 bits with that format's exponent range. IE for SNaN (quieted) and
 * unsupported encodings (indefinite), OE/UE/PE/DE as the SDM says. SDM FST.
 */
export function toFloat(a: F80, dbl: boolean): void {
  const k = classify(a);
  const eb = dbl ? 1023 : 127;
  if (k === K.INVALID) {
    sf.exc |= Exc.IE;
    if (dbl) {
      fHi = 0xfff80000 | 0;
      fLo = 0;
    } else fLo = 0xffc00000 | 0;
    return;
  }
  if (k >= K.QNAN) {
    if (k === K.SNAN) sf.exc |= Exc.IE;
    if (dbl) {
      fHi = (a.s << 31) | 0x7ff80000 | ((a.hi >>> 11) & 0xfffff) | 0;
      fLo = (a.hi << 21) | (a.lo >>> 11) | 0;
    } else fLo = (a.s << 31) | 0x7fc00000 | ((a.hi >>> 8) & 0x7fffff) | 0;
    return;
  }
  if (k === K.INF) {
    if (dbl) {
      fHi = (a.s << 31) | 0x7ff00000 | 0;
      fLo = 0;
    } else fLo = (a.s << 31) | 0x7f800000 | 0;
    return;
  }
  if (k === K.ZERO) {
    if (dbl) {
      fHi = (a.s << 31) | 0;
      fLo = 0;
    } else fLo = (a.s << 31) | 0;
    return;
  }
  // No DE for a denormal source (host behaviour).
  norm(a);
  const emin = BIAS - eb + 1;
  const emax = BIAS + eb;
  roundPack(a.s, ue, uh, ul, 0, dbl ? 53 : 24, emin, emax, false, tR);
  // Pack. Denormal results come back with e = emin - 1 and the integer bit clear.
  let fe: number;
  if (tR.e === 0x7fff) fe = dbl ? 0x7ff : 0xff;
  else if (tR.e === emin - 1) fe = 0;
  else fe = tR.e - BIAS + eb;
  const h = tR.hi,
    l = tR.lo;
  if (dbl) {
    fHi = (a.s << 31) | (fe << 20) | ((h >>> 11) & 0xfffff) | 0;
    fLo = (h << 21) | (l >>> 11) | 0;
  } else fLo = (a.s << 31) | (fe << 23) | ((h >>> 8) & 0x7fffff) | 0;
}

/** Rounds a to an integral value by sf.rc (extended precision; PC does not apply). SDM FRNDINT. */
export function roundInt(a: F80, out: F80): void {
  const k = classify(a);
  if (unaryInvalidOrNaN(a, k, out)) return;
  if (k === K.ZERO || k === K.INF) {
    out.copy(a);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  norm(a);
  const E = ue - BIAS;
  if (E >= 63) {
    out.copy(a);
    return;
  }
  const rc = sf.rc;
  if (E < 0) {
    let up: boolean;
    if (rc === 0) up = E === -1 && (uh !== 0x80000000 || ul !== 0);
    else if (rc === 1) up = a.s === 1;
    else if (rc === 2) up = a.s === 0;
    else up = false;
    sf.exc |= Exc.PE;
    sf.up = up;
    if (up) out.set(a.s, BIAS, 0x80000000, 0);
    else setZero(out, a.s);
    return;
  }
  roundAt(a.s, uh, ul, 0, E + 1, rc);
  if (!rExact) sf.exc |= Exc.PE;
  out.set(a.s, ue + rCarry, rH, rL);
}

/** Rounds an exact extended value (already unpacked in tA) at 64 bits for a register (used by scale/prem). */
function packExact(s: number, e: number, hi: number, lo: number, out: F80): void {
  packReg(s, e, hi, lo, 0, out, 64);
}

/**
 * FSCALE: out = a * 2^trunc(b). IE for invalid combinations (0 * 2^+inf,
 * inf * 2^-inf), NaN rules, DE, OE/UE/PE on the scaled result. SDM FSCALE.
 */
export function scale(a: F80, b: F80, out: F80): void {
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    propagateNaN(a, ka, b, kb, true, out);
    return;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  if (kb === K.INF) {
    if (b.s) {
      if (ka === K.INF) {
        sf.exc |= Exc.IE;
        setIndefinite(out);
      } else setZero(out, a.s);
    } else {
      if (ka === K.ZERO) {
        sf.exc |= Exc.IE;
        setIndefinite(out);
      } else setInf(out, a.s);
    }
    return;
  }
  if (ka === K.ZERO || ka === K.INF) {
    out.copy(a);
    return;
  }
  // n = trunc(b), clamped (beyond +-2^17 the result over/underflows anyway).
  let n = 0;
  if (kb !== K.ZERO) {
    norm(b);
    const E = ue - BIAS;
    if (E >= 17) n = 1 << 17;
    else if (E >= 0) n = E >= 31 ? 0 : Math.floor(uh / 2 ** (31 - E));
    if (b.s) n = -n;
  }
  norm(a);
  packExact(a.s, ue + n, uh, ul, out);
}

/**
 * FXTRACT: exponent of a (as an extended value) into `expOut`, significand
 * (same sign, exponent 0) into `sigOut`. Zero: ZE, exponent -inf,
 * significand the zero. Infinity: +inf exponent, the infinity. SDM FXTRACT.
 */
export function xtract(a: F80, expOut: F80, sigOut: F80): void {
  const k = classify(a);
  if (k === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(expOut);
    setIndefinite(sigOut);
    return;
  }
  if (k >= K.QNAN) {
    propagateNaN(a, k, a, k, false, sigOut);
    expOut.copy(sigOut);
    return;
  }
  if (k === K.ZERO) {
    sf.exc |= Exc.ZE;
    setInf(expOut, 1);
    sigOut.copy(a);
    return;
  }
  if (k === K.INF) {
    setInf(expOut, 0);
    sigOut.copy(a);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  norm(a);
  sigOut.set(a.s, BIAS, uh, ul);
  const E = ue - BIAS;
  fromInt64(E, E < 0 ? -1 : 0, expOut);
}

/** Quotient bits of the last `prem` (low 3 bits: C0 = q2, C3 = q0, C1 = q1) and whether it was partial (C2). */
export let premQ = 0;
export let premPartial = false;

/**
 * FPREM (round = false: quotient truncated) / FPREM1 (round = true:
 * quotient rounded to nearest even): out = a - q * b, exact. When the
 * exponent difference is 64 or more the reduction is partial (C2 = 1): a is
 * reduced by b * 2^(D - N) with N = 32 + (D mod 32) (a number in 32..63
 * as the SDM allows). SDM FPREM/FPREM1.
 */
export function prem(a: F80, b: F80, round: boolean, out: F80): void {
  premQ = 0;
  premPartial = false;
  const ka = classify(a),
    kb = classify(b);
  if (ka === K.INVALID || kb === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka >= K.QNAN || kb >= K.QNAN) {
    propagateNaN(a, ka, b, kb, true, out);
    return;
  }
  if (ka === K.INF || kb === K.ZERO) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return;
  }
  if (ka === K.DENORMAL || kb === K.DENORMAL) sf.exc |= Exc.DE;
  if (ka === K.ZERO || kb === K.INF) {
    out.copy(a);
    return;
  }
  norm(a);
  const ea = ue,
    ah = uh,
    al = ul;
  norm(b);
  const eb = ue,
    bh = uh,
    bl = ul;
  let D = ea - eb;
  if (D < (round ? -1 : 0)) {
    packExact(a.s, ea, ah, al, out);
    return;
  }
  let ebEff = eb;
  if (D >= 64) {
    premPartial = true;
    const N = 32 + (D % 32);
    ebEff = eb + (D - N);
    D = N;
    round = false;
  }
  // Long division of (ah:al) * 2^D by (bh:bl); remainder in (rh:rl), 65 bits.
  let rh = ah,
    rl = al;
  let q = 0;
  if (D < 0) {
    // FPREM1 with |a| in [|b|/2, |b|): remainder with D = -1 is decided by rounding below.
  } else {
    for (let i = 0; i <= D; i++) {
      let bit = 0;
      if (rh > bh || (rh === bh && rl >= bl)) {
        bit = 1;
        rl -= bl;
        rh -= bh;
        if (rl < 0) {
          rl += 4294967296;
          rh -= 1;
        }
      }
      q = ((q << 1) | bit) & 7;
      if (i < D) {
        rh = rh * 2 + (rl >>> 31);
        rl = (rl << 1) >>> 0;
      }
    }
  }
  // Remainder value: (rh:rl) * 2^(ebEff - 63 - BIAS) (for D = -1: a itself, scale 2^(ea - ...)).
  let s = a.s;
  let re = D < 0 ? ea : ebEff;
  if (round) {
    // Compare 2 * rem with b (for D = -1, rem = a and its scale is half of b's: compare rem with b directly).
    let r2h: number, r2l: number;
    if (D < 0) {
      r2h = rh;
      r2l = rl;
    } else {
      r2h = rh * 2 + (rl >>> 31);
      r2l = (rl << 1) >>> 0;
    }
    const gt = r2h > bh || (r2h === bh && r2l > bl);
    const eq = r2h === bh && r2l === bl;
    if (gt || (eq && q & 1)) {
      // rem := b - rem (in b's scale), sign flips, q += 1
      if (D < 0) {
        // b - a with a at half scale: (2b - a) at a's scale.
        let th = bh * 2 + (bl >>> 31),
          tl = (bl << 1) >>> 0;
        tl -= rl;
        th -= rh;
        if (tl < 0) {
          tl += 4294967296;
          th -= 1;
        }
        rh = th;
        rl = tl;
      } else {
        let tl = bl - rl,
          th = bh - rh;
        if (tl < 0) {
          tl += 4294967296;
          th -= 1;
        }
        rh = th;
        rl = tl;
      }
      s ^= 1;
      q = (q + 1) & 7;
    }
  }
  premQ = q;
  if (rh === 0 && rl === 0) {
    setZero(out, a.s);
    return;
  }
  // rh may have a 65th bit only transiently; here rem < b < 2^64.
  packExact(s, re, rh >>> 0, rl, out);
}

/** Copies for callers that need two temporaries. */
export const scratchA = tA;
export const scratchB = tB;
