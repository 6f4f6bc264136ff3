/**
 * The debugger's expression language: C-like integer expressions over
 * registers, symbols, filter variables (arg0..arg5, cr2, err, ...) and guest
 * memory. Used for breakpoint conditions, logpoint interpolation, the debug
 * console's `evaluate`, hovers and the `&& <expr>` part of filter conditions.
 *
 * Pure: no engine state. Names and memory come through an {@link ExprContext}.
 *
 * Grammar (lowest to highest precedence, C's):
 *   expr     := or
 *   or       := and ('||' and)*
 *   and      := bitor ('&&' bitor)*
 *   bitor    := bitxor ('|' bitxor)*
 *   bitxor   := bitand ('^' bitand)*
 *   bitand   := equality ('&' equality)*
 *   equality := relation (('=='|'!=') relation)*
 *   relation := shift (('<'|'<='|'>'|'>=') shift)*
 *   shift    := additive (('<<'|'>>') additive)*
 *   additive := term (('+'|'-') term)*
 *   term     := unary (('*'|'/'|'%') unary)*
 *   unary    := ('-'|'+'|'~'|'!'|'*'|'&') unary | '(' type ')' unary | postfix
 *   postfix  := primary ('[' expr ']')*
 *   primary  := number | name | '(' expr ')'
 *   type     := u8|u16|u32|u64|s8|s16|s32|s64|i8..i64|uint8_t..uint64_t|int8_t..int64_t
 *               |char|short|int|long|unsigned [char|short|int|long]|void|ulong|size_t  followed by '*'s
 *
 * Values are 64-bit: arithmetic wraps modulo 2^64 (unsigned) unless an
 * operand was cast to a signed type. Comparisons and logical operators yield
 * 0 or 1. `*p` reads 8 bytes (or the pointee size of a cast pointer, e.g.
 * `*(u32*)sym`), little-endian. `p[i]` reads element i of a cast pointer.
 * `&name` yields a symbol's address without reading it. A symbol used as a
 * value is its address (like `&sym` in C for arrays and functions).
 */

/** Error with a user-facing message (bad syntax, unknown name, unreadable memory, division by zero). */
export class ExprError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExprError';
  }
}

/** What an expression can see. */
export interface ExprContext {
  /** Value of a register, variable or symbol (case as written); undefined when unknown. */
  lookup(name: string): bigint | undefined;
  /** Reads `size` bytes (1, 2, 4 or 8) at `address` as a little-endian unsigned value; undefined when unreadable. */
  readMemory?(address: bigint, size: number): bigint | undefined;
}

/** An integer type of the language: size in bytes and signedness. */
interface IntType {
  size: number;
  signed: boolean;
}

/** A value: 64-bit (or narrower) integer; `pointee` is set for values cast to a pointer type. */
interface Value {
  v: bigint;
  signed: boolean;
  pointee?: IntType;
}

type Node =
  | { k: 'num'; v: bigint }
  | { k: 'name'; name: string }
  | { k: 'addr'; name: string }
  | { k: 'un'; op: string; e: Node }
  | { k: 'bin'; op: string; a: Node; b: Node }
  | { k: 'cast'; t: IntType; ptr: number; e: Node }
  | { k: 'deref'; e: Node }
  | { k: 'index'; e: Node; i: Node };

/** A parsed expression, evaluated many times. */
export interface CompiledExpr {
  readonly source: string;
  /** Evaluates to a bigint (signed results may be negative). Throws ExprError. */
  evaluate(ctx: ExprContext): bigint;
  /** Names (registers, symbols, variables) the expression mentions. */
  readonly names: string[];
}

const MASK64 = (1n << 64n) - 1n;

const TYPES: Record<string, IntType> = {
  u8: { size: 1, signed: false },
  u16: { size: 2, signed: false },
  u32: { size: 4, signed: false },
  u64: { size: 8, signed: false },
  s8: { size: 1, signed: true },
  s16: { size: 2, signed: true },
  s32: { size: 4, signed: true },
  s64: { size: 8, signed: true },
  i8: { size: 1, signed: true },
  i16: { size: 2, signed: true },
  i32: { size: 4, signed: true },
  i64: { size: 8, signed: true },
  uint8_t: { size: 1, signed: false },
  uint16_t: { size: 2, signed: false },
  uint32_t: { size: 4, signed: false },
  uint64_t: { size: 8, signed: false },
  int8_t: { size: 1, signed: true },
  int16_t: { size: 2, signed: true },
  int32_t: { size: 4, signed: true },
  int64_t: { size: 8, signed: true },
  char: { size: 1, signed: true },
  short: { size: 2, signed: true },
  int: { size: 4, signed: true },
  long: { size: 8, signed: true },
  ulong: { size: 8, signed: false },
  size_t: { size: 8, signed: false },
  void: { size: 1, signed: false },
  uchar: { size: 1, signed: false },
  ushort: { size: 2, signed: false },
  uint: { size: 4, signed: false },
};

interface Token {
  t: 'num' | 'name' | 'op' | 'end';
  s: string;
  v?: bigint;
  pos: number;
}

const OPS = [
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '&&',
  '||',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '~',
  '!',
  '<',
  '>',
  '(',
  ')',
  '[',
  ']',
];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c >= '0' && c <= '9') {
      const m = /^(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9][0-9_]*)([uUlL]*)/.exec(src.slice(i));
      if (!m) throw new ExprError(`bad number at column ${i + 1}`);
      const text = m[1].replace(/_/g, '');
      let v: bigint;
      try {
        v = BigInt(text);
      } catch {
        throw new ExprError(`bad number '${m[0]}' at column ${i + 1}`);
      }
      const after = src[i + m[0].length];
      if (after !== undefined && /[A-Za-z0-9_$.]/.test(after))
        throw new ExprError(`bad number '${src.slice(i, i + m[0].length + 1)}' at column ${i + 1}`);
      out.push({ t: 'num', s: m[0], v, pos: i });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_$.@]/.test(c)) {
      const m = /^[A-Za-z_$.@][A-Za-z0-9_$.@]*/.exec(src.slice(i))!;
      out.push({ t: 'name', s: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprError(`unexpected character '${c}' at column ${i + 1}`);
    out.push({ t: 'op', s: op, pos: i });
    i += op.length;
  }
  out.push({ t: 'end', s: '', pos: src.length });
  return out;
}

class Parser {
  private i = 0;
  readonly names = new Set<string>();
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.i];
  }
  private next(): Token {
    return this.toks[this.i++];
  }
  private isOp(s: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.s === s;
  }
  private expect(s: string): void {
    const t = this.next();
    if (t.t !== 'op' || t.s !== s)
      throw new ExprError(
        `expected '${s}' at column ${t.pos + 1}${t.t === 'end' ? ' (end of expression)' : ` but found '${t.s}'`}`,
      );
  }

  parseAll(): Node {
    if (this.peek().t === 'end') throw new ExprError('empty expression');
    const n = this.binary(0);
    const t = this.peek();
    if (t.t !== 'end') throw new ExprError(`unexpected '${t.s}' at column ${t.pos + 1}`);
    return n;
  }

  private static readonly LEVELS: string[][] = [
    ['||'],
    ['&&'],
    ['|'],
    ['^'],
    ['&'],
    ['==', '!='],
    ['<', '<=', '>', '>='],
    ['<<', '>>'],
    ['+', '-'],
    ['*', '/', '%'],
  ];

  private binary(level: number): Node {
    if (level >= Parser.LEVELS.length) return this.unary();
    let a = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && Parser.LEVELS[level].includes(t.s)) {
        this.next();
        const b = this.binary(level + 1);
        a = { k: 'bin', op: t.s, a, b };
      } else return a;
    }
  }

  /** If the tokens at the cursor are `( type *... )`, consumes them and returns the cast. */
  private tryCast(): { t: IntType; ptr: number } | undefined {
    if (!this.isOp('(')) return undefined;
    let j = this.i + 1;
    const words: string[] = [];
    while (this.toks[j].t === 'name') {
      words.push(this.toks[j].s);
      j++;
    }
    if (words.length === 0) return undefined;
    let t: IntType | undefined;
    if (words[0] === 'unsigned' || words[0] === 'signed') {
      const rest = words.slice(1).filter((w) => w !== 'int' || words.length === 2);
      const base = rest.length === 0 ? 'int' : rest.join(' ') === 'long long' ? 'long' : rest[0];
      const bt = TYPES[base];
      if (!bt || rest.length > 2) return undefined;
      t = { size: bt.size, signed: words[0] === 'signed' };
    } else if (words.length === 1) {
      t = TYPES[words[0]];
    } else if (words.join(' ') === 'long long' || words.join(' ') === 'long int') {
      t = TYPES.long;
    } else if (words.join(' ') === 'short int') {
      t = TYPES.short;
    }
    if (!t) return undefined;
    let ptr = 0;
    while (this.toks[j].t === 'op' && this.toks[j].s === '*') {
      ptr++;
      j++;
    }
    if (!(this.toks[j].t === 'op' && this.toks[j].s === ')')) return undefined;
    this.i = j + 1;
    return { t, ptr };
  }

  private unary(): Node {
    const t = this.peek();
    if (t.t === 'op') {
      if (t.s === '-' || t.s === '+' || t.s === '~' || t.s === '!') {
        this.next();
        return { k: 'un', op: t.s, e: this.unary() };
      }
      if (t.s === '*') {
        this.next();
        return { k: 'deref', e: this.unary() };
      }
      if (t.s === '&') {
        this.next();
        const n = this.next();
        if (n.t !== 'name') throw new ExprError(`'&' needs a symbol name at column ${t.pos + 1}`);
        this.names.add(n.s);
        return { k: 'addr', name: n.s };
      }
      if (t.s === '(') {
        const cast = this.tryCast();
        if (cast) return { k: 'cast', t: cast.t, ptr: cast.ptr, e: this.unary() };
      }
    }
    return this.postfix();
  }

  private postfix(): Node {
    let e = this.primary();
    while (this.isOp('[')) {
      this.next();
      const i = this.binary(0);
      this.expect(']');
      e = { k: 'index', e, i };
    }
    return e;
  }

  private primary(): Node {
    const t = this.next();
    if (t.t === 'num') return { k: 'num', v: t.v! };
    if (t.t === 'name') {
      this.names.add(t.s);
      return { k: 'name', name: t.s };
    }
    if (t.t === 'op' && t.s === '(') {
      const e = this.binary(0);
      this.expect(')');
      return e;
    }
    if (t.t === 'end') throw new ExprError('unexpected end of expression');
    throw new ExprError(`unexpected '${t.s}' at column ${t.pos + 1}`);
  }
}

function norm(v: bigint, signed: boolean): bigint {
  return signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
}

function convert(v: bigint, t: IntType): bigint {
  const bits = t.size * 8;
  return t.signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
}

function readTyped(ctx: ExprContext, address: bigint, t: IntType): bigint {
  if (!ctx.readMemory) throw new ExprError('memory is not readable here');
  const a = BigInt.asUintN(64, address);
  const raw = ctx.readMemory(a, t.size);
  if (raw === undefined) throw new ExprError(`cannot read ${t.size} byte(s) at 0x${a.toString(16)}`);
  return convert(raw, t);
}

const U64: IntType = { size: 8, signed: false };

function evalNode(n: Node, ctx: ExprContext): Value {
  switch (n.k) {
    case 'num':
      return { v: n.v & MASK64, signed: false };
    case 'name':
    case 'addr': {
      const v = ctx.lookup(n.name);
      if (v === undefined) throw new ExprError(`unknown name '${n.name}'`);
      return { v: norm(v, v < 0n), signed: v < 0n };
    }
    case 'un': {
      const a = evalNode(n.e, ctx);
      switch (n.op) {
        case '-':
          return { v: norm(-a.v, a.signed), signed: a.signed };
        case '+':
          return a;
        case '~':
          return { v: norm(~a.v, a.signed), signed: a.signed };
        default:
          return { v: a.v === 0n ? 1n : 0n, signed: false };
      }
    }
    case 'cast': {
      const a = evalNode(n.e, ctx);
      if (n.ptr > 0) {
        const pointee = n.ptr === 1 ? n.t : U64;
        return { v: BigInt.asUintN(64, a.v), signed: false, pointee };
      }
      return { v: convert(a.v, n.t), signed: n.t.signed };
    }
    case 'deref': {
      const a = evalNode(n.e, ctx);
      const t = a.pointee ?? U64;
      return { v: readTyped(ctx, a.v, t), signed: t.signed };
    }
    case 'index': {
      const a = evalNode(n.e, ctx);
      const i = evalNode(n.i, ctx);
      const t = a.pointee ?? U64;
      return { v: readTyped(ctx, a.v + i.v * BigInt(t.size), t), signed: t.signed };
    }
    case 'bin': {
      if (n.op === '&&') {
        const a = evalNode(n.a, ctx);
        if (a.v === 0n) return { v: 0n, signed: false };
        return { v: evalNode(n.b, ctx).v !== 0n ? 1n : 0n, signed: false };
      }
      if (n.op === '||') {
        const a = evalNode(n.a, ctx);
        if (a.v !== 0n) return { v: 1n, signed: false };
        return { v: evalNode(n.b, ctx).v !== 0n ? 1n : 0n, signed: false };
      }
      const a = evalNode(n.a, ctx);
      const b = evalNode(n.b, ctx);
      const signed = a.signed && b.signed ? true : a.signed || b.signed ? a.v < 0n || b.v < 0n : false;
      const bool = (x: boolean): Value => ({ v: x ? 1n : 0n, signed: false });
      // Pointer arithmetic: a cast pointer plus/minus an integer scales by the pointee size.
      const scale = a.pointee && !b.pointee && (n.op === '+' || n.op === '-') ? BigInt(a.pointee.size) : 1n;
      switch (n.op) {
        case '+':
          return { v: norm(a.v + b.v * scale, signed), signed, pointee: a.pointee };
        case '-':
          return { v: norm(a.v - b.v * scale, signed), signed, pointee: scale > 1n ? a.pointee : undefined };
        case '*':
          return { v: norm(a.v * b.v, signed), signed };
        case '/':
        case '%': {
          if (b.v === 0n) throw new ExprError('division by zero');
          const r = n.op === '/' ? a.v / b.v : a.v % b.v;
          return { v: norm(r, signed), signed };
        }
        case '&':
          return { v: norm(a.v & b.v, signed), signed };
        case '|':
          return { v: norm(a.v | b.v, signed), signed };
        case '^':
          return { v: norm(a.v ^ b.v, signed), signed };
        case '<<':
          return { v: b.v >= 64n || b.v < 0n ? 0n : norm(a.v << b.v, a.signed), signed: a.signed };
        case '>>':
          if (b.v >= 64n || b.v < 0n) return { v: a.signed && a.v < 0n ? -1n : 0n, signed: a.signed };
          return { v: norm(a.v >> b.v, a.signed), signed: a.signed };
        case '==':
          return bool(BigInt.asUintN(64, a.v) === BigInt.asUintN(64, b.v));
        case '!=':
          return bool(BigInt.asUintN(64, a.v) !== BigInt.asUintN(64, b.v));
        case '<':
          return bool(signed ? a.v < b.v : BigInt.asUintN(64, a.v) < BigInt.asUintN(64, b.v));
        case '<=':
          return bool(signed ? a.v <= b.v : BigInt.asUintN(64, a.v) <= BigInt.asUintN(64, b.v));
        case '>':
          return bool(signed ? a.v > b.v : BigInt.asUintN(64, a.v) > BigInt.asUintN(64, b.v));
        case '>=':
          return bool(signed ? a.v >= b.v : BigInt.asUintN(64, a.v) >= BigInt.asUintN(64, b.v));
      }
      throw new ExprError(`unknown operator '${n.op}'`);
    }
  }
}

/**
 * Parses `source` once. Throws ExprError with a message naming the column on
 * bad syntax (unknown names are only reported at evaluation).
 */
export function compileExpr(source: string): CompiledExpr {
  if (source.length > 4096) throw new ExprError('expression too long (limit 4096 characters)');
  const p = new Parser(tokenize(source));
  let ast: Node;
  try {
    ast = p.parseAll();
  } catch (e) {
    if (e instanceof RangeError) throw new ExprError('expression too deeply nested');
    throw e;
  }
  const names = [...p.names];
  return {
    source,
    names,
    evaluate(ctx: ExprContext): bigint {
      try {
        return evalNode(ast, ctx).v;
      } catch (e) {
        if (e instanceof ExprError) throw e;
        if (e instanceof RangeError) throw new ExprError('expression too deeply nested');
        throw e;
      }
    },
  };
}

/** Parses and evaluates in one go. Throws ExprError. */
export function evaluateExpr(source: string, ctx: ExprContext): bigint {
  return compileExpr(source).evaluate(ctx);
}

/** Formats a value as `0x...` hex (two's complement 64-bit for negatives). */
export function hex(v: bigint): string {
  return '0x' + BigInt.asUintN(64, v).toString(16);
}
