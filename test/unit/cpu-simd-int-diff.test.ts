/**
 * Differential tests of the SIMD integer unit (engine/cpu/simd/mmx.ts,
 * sse-int.ts, sse42.ts) against the host CPU: every case loads its XMM
 * (or MMX) operands from the scratch buffer (MOVDQU/MOVQ), runs one
 * instruction, and stores the registers back to the scratch buffer, so the
 * harness's comparison of GPRs, flags and scratch memory covers the SIMD
 * results. Operands mix random bytes with edge values (0, 1, 0x7f, 0x80,
 * 0xff, saturation limits, short shift counts, strings with nulls), the
 * explicit string lengths in RAX/RDX are small or huge, and misaligned
 * aligned-form operands must fault like the host (#GP -> SIGSEGV).
 *
 * Integer SIMD results are vendor-neutral (Intel SDM vol. 2 = AMD APM vol. 4
 * for every instruction here), so every case is checked on every host.
 * `PVSCOPE_SIMD_VARIANTS=<n>` changes the inputs per form (default 10).
 */
import { strict as assert } from 'node:assert';
import {
  buildNativeBatch,
  requireNativeToolchain,
  scratchInit,
  SCRATCH_BASE,
  SCRATCH_SIZE,
  SIG,
  UNMAPPED_PAGES,
  type Bitness,
  type NativeBatch,
  type NativeInput,
  type NativeOutcome,
} from '../helpers/native-harness';
import { ExitReason } from '../../engine/cpu/api';
import { Rng } from '../helpers/x86-gen';
import {
  createMachine,
  getGpr,
  getRip,
  runUntilExit,
  setGpr,
  type TestMachine,
  loadBatch,
} from '../helpers/engine-runner';

const VARIANTS = Number(process.env.PVSCOPE_SIMD_VARIANTS) || 10;
const FLAGS = 0x8d5; // CF PF AF ZF SF OF

// Operand blocks in the scratch buffer (16 bytes each).
const IN = [0x000, 0x010, 0x020, 0x030];
const MEM = 0x040; // 16-byte aligned memory operand
const OUT = 0x800;
const S = (off: number) => `0x${(SCRATCH_BASE + off).toString(16)}`;

const BYTE_POOL = [0, 1, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x55];
const WORD_POOL = [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0x00ff, 0xff00, 0xfffe];
const DWORD_POOL = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x0000ffff, 0xffff0000];

/** Patches one 16-byte block at `off` in one of several value styles. */
function patchBlock(rng: Rng, patch: Array<[number, number]>, off: number, strings: boolean): void {
  const style = rng.int(strings ? 7 : 6);
  const put = (i: number, b: number) => patch.push([off + i, b & 0xff]);
  switch (style) {
    case 0:
      return; // random fill
    case 1:
      for (let i = 0; i < 16; i++) put(i, rng.int(3) ? rng.pick(BYTE_POOL) : rng.u32());
      return;
    case 2:
      for (let i = 0; i < 16; i += 2) {
        const w = rng.pick(WORD_POOL);
        put(i, w);
        put(i + 1, w >> 8);
      }
      return;
    case 3:
      for (let i = 0; i < 16; i += 4) {
        const w = rng.pick(DWORD_POOL);
        for (let k = 0; k < 4; k++) put(i + k, w >>> (8 * k));
      }
      return;
    case 4: // a short shift count (low qword), junk above
      put(0, rng.int(72));
      for (let i = 1; i < 8; i++) put(i, 0);
      return;
    case 5: // small signed values
      for (let i = 0; i < 16; i++) put(i, rng.int(7) - 3);
      return;
    default: // strings: few letters and nulls
      for (let i = 0; i < 16; i++) put(i, rng.int(8) === 0 ? 0 : 0x61 + rng.int(4));
  }
}

interface Form {
  /** Class shown in the test title. */
  cls: string;
  body: string;
  /** Registers the body reads as explicit lengths etc.: small values wanted. */
  smallRegs?: boolean;
  /** Operand blocks look like strings. */
  strings?: boolean;
}

const XLOAD = IN.map((o, i) => `movdqu ${S(o)}, %xmm${i}`).join('\n');
const XSTORE = IN.map((o, i) => `movdqu %xmm${i}, ${S(OUT + o)}`).join('\n');
const MLOAD = [0, 1, 2, 3].map((i) => `movq ${S(IN[i])}, %mm${i}`).join('\n');
const MSTORE = [0, 1, 2, 3].map((i) => `movq %mm${i}, ${S(OUT + IN[i])}`).join('\n') + '\nemms';

function xmm(cls: string, insn: string, extra: Partial<Form> = {}): Form {
  return { cls, body: `${XLOAD}\n${insn}\n${XSTORE}`, ...extra };
}
function mmx(cls: string, insn: string, extra: Partial<Form> = {}): Form {
  return { cls, body: `${MLOAD}\n${insn}\n${MSTORE}`, ...extra };
}

const BINARY_BOTH = [
  'punpcklbw punpcklwd punpckldq packsswb pcmpgtb pcmpgtw pcmpgtd packuswb punpckhbw punpckhwd punpckhdq packssdw',
  'pcmpeqb pcmpeqw pcmpeqd psrlw psrld psrlq paddq pmullw psubusb psubusw pminub pand paddusb paddusw pmaxub pandn',
  'pavgb psraw psrad pavgw pmulhuw pmulhw psubsb psubsw pminsw por paddsb paddsw pmaxsw pxor psllw pslld psllq',
  'pmuludq pmaddwd psadbw psubb psubw psubd psubq paddb paddw paddd',
  'pshufb phaddw phaddd phaddsw pmaddubsw phsubw phsubd phsubsw psignb psignw psignd pmulhrsw pabsb pabsw pabsd',
]
  .join(' ')
  .split(' ');
const BINARY_XMM = (
  'punpcklqdq punpckhqdq packusdw pmuldq pcmpeqq pminsb pminsd pminuw pminud pmaxsb pmaxsd pmaxuw pmaxud ' +
  'pmulld phminposuw pcmpgtq'
).split(' ');

function forms(): Form[] {
  const f: Form[] = [];
  for (const op of [...BINARY_BOTH, ...BINARY_XMM]) {
    f.push(xmm(`xmm.${op}`, `${op} %xmm1, %xmm0`));
    f.push(xmm(`xmm.${op}`, `${op} ${S(MEM)}, %xmm2`));
  }
  for (const op of BINARY_BOTH) {
    f.push(mmx(`mmx.${op}`, `${op} %mm1, %mm0`));
    f.push(mmx(`mmx.${op}`, `${op} ${S(MEM)}, %mm2`));
  }
  // Misaligned memory operand of an aligned form: #GP(0).
  for (const op of ['paddb', 'pshufb', 'pminsd', 'pcmpgtq'])
    f.push(xmm('xmm.misaligned', `${op} ${S(MEM + 4)}, %xmm0`));
  // Immediate forms.
  for (const imm of [0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 200]) {
    f.push(xmm('xmm.palignr', `palignr $${imm}, %xmm1, %xmm0`));
    f.push(mmx('mmx.palignr', `palignr $${imm}, %mm1, %mm0`));
  }
  for (const imm of [0x00, 0x1b, 0xe4, 0x55, 0xff, 0x93, 0x4e]) {
    f.push(xmm('xmm.pshufd', `pshufd $${imm}, %xmm1, %xmm0`));
    f.push(xmm('xmm.pshufd', `pshufd $${imm}, ${S(MEM)}, %xmm0`));
    f.push(xmm('xmm.pshufhw', `pshufhw $${imm}, %xmm1, %xmm0`));
    f.push(xmm('xmm.pshuflw', `pshuflw $${imm}, %xmm1, %xmm0`));
    f.push(mmx('mmx.pshufw', `pshufw $${imm}, %mm1, %mm0`));
    f.push(mmx('mmx.pshufw', `pshufw $${imm}, ${S(MEM)}, %mm0`));
    f.push(xmm('xmm.pblendw', `pblendw $${imm}, %xmm1, %xmm2`));
  }
  for (let imm = 0; imm < 8; imm++) {
    f.push(xmm('xmm.mpsadbw', `mpsadbw $${imm}, %xmm1, %xmm2`));
    f.push(xmm('xmm.mpsadbw', `mpsadbw $${imm}, ${S(MEM)}, %xmm2`));
  }
  f.push(xmm('xmm.pblendvb', `pblendvb %xmm0, %xmm1, %xmm2`));
  f.push(xmm('xmm.pblendvb', `pblendvb %xmm0, ${S(MEM)}, %xmm3`));
  f.push(xmm('xmm.ptest', `ptest %xmm1, %xmm0`));
  f.push(xmm('xmm.ptest', `ptest %xmm0, %xmm0`));
  f.push(xmm('xmm.ptest', `ptest ${S(MEM)}, %xmm2`));
  // Shifts by immediate.
  for (const c of [0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 200]) {
    for (const op of ['psrlw', 'psraw', 'psllw', 'psrld', 'psrad', 'pslld', 'psrlq', 'psllq']) {
      f.push(xmm(`xmm.${op}.imm`, `${op} $${c}, %xmm1`));
      f.push(mmx(`mmx.${op}.imm`, `${op} $${c}, %mm1`));
    }
    f.push(xmm('xmm.psrldq', `psrldq $${c}, %xmm1`));
    f.push(xmm('xmm.pslldq', `pslldq $${c}, %xmm1`));
  }
  // PMOVSX/PMOVZX.
  for (const op of ['bw', 'bd', 'bq', 'wd', 'wq', 'dq']) {
    for (const sz of ['s', 'z']) {
      f.push(xmm(`xmm.pmov${sz}x`, `pmov${sz}x${op} %xmm1, %xmm0`));
      f.push(xmm(`xmm.pmov${sz}x`, `pmov${sz}x${op} ${S(MEM + 3)}, %xmm0`));
    }
  }
  // Moves.
  const mv = (cls: string, insn: string) => f.push(xmm(cls, insn));
  mv('xmm.movd', 'movd %eax, %xmm0');
  mv('xmm.movd', 'movq %rax, %xmm0');
  mv('xmm.movd', `movd ${S(MEM + 1)}, %xmm1`);
  mv('xmm.movd', 'movd %xmm1, %eax');
  mv('xmm.movd', 'movq %xmm1, %rax');
  mv('xmm.movd', 'movq %xmm1, %r9');
  mv('xmm.movd', `movd %xmm1, ${S(MEM + 2)}`);
  mv('xmm.movd', `movq %xmm1, ${S(MEM + 2)}`);
  mv('xmm.movq', `movq ${S(MEM + 1)}, %xmm2`);
  mv('xmm.movq', '.byte 0xf3, 0x0f, 0x7e, 0xc1'); // movq %xmm1, %xmm0 (F3 0F 7E)
  mv('xmm.movq', '.byte 0x66, 0x0f, 0xd6, 0xc8'); // movq %xmm1, %xmm0 (66 0F D6)
  mv('xmm.movq', `movq %xmm3, ${S(MEM + 5)}`);
  mv('xmm.movdqa', `movdqa ${S(MEM)}, %xmm1`);
  mv('xmm.movdqa', `movdqa %xmm2, ${S(MEM)}`);
  mv('xmm.movdqa', `movdqa ${S(MEM + 8)}, %xmm1`);
  mv('xmm.movdqa', `movdqa %xmm2, ${S(MEM + 1)}`);
  mv('xmm.movdqa', `movdqa %xmm2, %xmm1`);
  mv('xmm.movdqu', `movdqu ${S(MEM + 7)}, %xmm1`);
  mv('xmm.movdqu', `movdqu %xmm2, ${S(MEM + 9)}`);
  mv('xmm.movnt', `movntdq %xmm2, ${S(MEM)}`);
  mv('xmm.movnt', `movntdq %xmm2, ${S(MEM + 4)}`);
  mv('xmm.movnt', `movntdqa ${S(MEM)}, %xmm1`);
  mv('xmm.movnt', `movnti %eax, ${S(MEM + 3)}`);
  mv('xmm.movnt', `movnti %rcx, ${S(MEM + 3)}`);
  for (const r of ['%rdi', '%edi']) {
    const setup = `lea ${S(MEM + 16 * 4 + 3)}, ${r}\n`;
    mv('xmm.maskmovdqu', `${setup}maskmovdqu %xmm1, %xmm0`);
    f.push(mmx('mmx.maskmovq', `${setup}maskmovq %mm1, %mm0`));
  }
  for (let imm = 0; imm < 9; imm++) {
    mv('xmm.pinsrw', `pinsrw $${imm}, %eax, %xmm0`);
    mv('xmm.pinsrw', `pinsrw $${imm}, ${S(MEM + 1)}, %xmm0`);
    mv('xmm.pextrw', `pextrw $${imm}, %xmm1, %eax`);
    mv('xmm.pextrw', `pextrw $${imm}, %xmm1, ${S(MEM + 1)}`);
    f.push(mmx('mmx.pinsrw', `pinsrw $${imm}, %ecx, %mm0`));
    f.push(mmx('mmx.pinsrw', `pinsrw $${imm}, ${S(MEM + 1)}, %mm0`));
    f.push(mmx('mmx.pextrw', `pextrw $${imm}, %mm1, %edx`));
  }
  for (const imm of [0, 1, 5, 15, 16, 17]) {
    mv('xmm.pinsrb', `pinsrb $${imm}, %eax, %xmm0`);
    mv('xmm.pinsrb', `pinsrb $${imm}, ${S(MEM + 1)}, %xmm0`);
    mv('xmm.pextrb', `pextrb $${imm}, %xmm1, %eax`);
    mv('xmm.pextrb', `pextrb $${imm}, %xmm1, %r10`);
    mv('xmm.pextrb', `pextrb $${imm}, %xmm1, ${S(MEM + 1)}`);
  }
  for (const imm of [0, 1, 2, 3, 4, 5]) {
    mv('xmm.pinsrd', `pinsrd $${imm}, %eax, %xmm0`);
    mv('xmm.pinsrd', `pinsrd $${imm}, ${S(MEM + 1)}, %xmm0`);
    mv('xmm.pinsrq', `pinsrq $${imm}, %rcx, %xmm0`);
    mv('xmm.pinsrq', `pinsrq $${imm}, ${S(MEM + 1)}, %xmm0`);
    mv('xmm.pextrd', `pextrd $${imm}, %xmm1, %eax`);
    mv('xmm.pextrd', `pextrd $${imm}, %xmm1, ${S(MEM + 1)}`);
    mv('xmm.pextrq', `pextrq $${imm}, %xmm1, %rax`);
    mv('xmm.pextrq', `pextrq $${imm}, %xmm1, ${S(MEM + 1)}`);
  }
  mv('xmm.pmovmskb', 'pmovmskb %xmm1, %eax');
  mv('xmm.pmovmskb', 'pmovmskb %xmm2, %r11');
  f.push(mmx('mmx.pmovmskb', 'pmovmskb %mm1, %eax'));
  // MMX moves.
  const mm = (cls: string, insn: string) => f.push(mmx(cls, insn));
  mm('mmx.movd', 'movd %eax, %mm0');
  mm('mmx.movd', 'movq %rax, %mm0');
  mm('mmx.movd', `movd ${S(MEM + 1)}, %mm1`);
  mm('mmx.movd', 'movd %mm1, %eax');
  mm('mmx.movd', 'movq %mm1, %rcx');
  mm('mmx.movd', `movd %mm1, ${S(MEM + 2)}`);
  mm('mmx.movq', `movq ${S(MEM + 1)}, %mm2`);
  mm('mmx.movq', `movq %mm3, ${S(MEM + 5)}`);
  mm('mmx.movq', 'movq %mm3, %mm1');
  mm('mmx.movq', '.byte 0x0f, 0x7f, 0xd8'); // movq %mm3, %mm0 (0F 7F)
  mm('mmx.movntq', `movntq %mm3, ${S(MEM + 5)}`);
  f.push({ cls: 'mmx.movq2dq', body: `${MLOAD}\n${XLOAD}\nmovq2dq %mm1, %xmm0\n${XSTORE}\n${MSTORE}` });
  f.push({ cls: 'mmx.movq2dq', body: `${MLOAD}\n${XLOAD}\nmovdq2q %xmm2, %mm0\n${XSTORE}\n${MSTORE}` });
  // SSE4.2 string compares: every control byte (bit 7 reserved), register and memory forms.
  for (let imm = 0; imm < 128; imm++) {
    for (const op of ['pcmpestri', 'pcmpestrm', 'pcmpistri', 'pcmpistrm']) {
      const src = imm % 3 === 0 ? `${S(MEM + 1)}` : '%xmm1';
      f.push(xmm(`xmm.${op}`, `${op} $${imm}, ${src}, %xmm2`, { smallRegs: true, strings: true }));
    }
  }
  f.push(xmm('xmm.pcmpestri', 'pcmpestriq $0x0c, %xmm1, %xmm2', { smallRegs: true, strings: true }));
  // CRC32, MOVBE.
  const g = (cls: string, insn: string) => f.push(xmm(cls, insn));
  for (const [op, src, dst] of [
    ['crc32b', '%al', '%ecx'],
    ['crc32b', '%ah', '%ecx'],
    ['crc32b', '%sil', '%edx'],
    ['crc32w', '%ax', '%ecx'],
    ['crc32l', '%eax', '%ecx'],
    ['crc32q', '%rax', '%rcx'],
    ['crc32b', '%al', '%rcx'],
    ['crc32b', `${S(MEM + 3)}`, '%ecx'],
    ['crc32w', `${S(MEM + 3)}`, '%ecx'],
    ['crc32l', `${S(MEM + 3)}`, '%ecx'],
    ['crc32q', `${S(MEM + 3)}`, '%rcx'],
  ])
    g('crc32', `${op} ${src}, ${dst}`);
  for (const r of ['%ax', '%eax', '%rax', '%r9']) {
    g('movbe', `movbe ${S(MEM + 3)}, ${r}`);
    g('movbe', `movbe ${r}, ${S(MEM + 3)}`);
  }
  g('popcnt', 'popcnt %rax, %rcx');
  return f;
}

function inputFor(rng: Rng, form: Form, bitness: Bitness): NativeInput {
  const patch: Array<[number, number]> = [];
  for (const o of [...IN, MEM, MEM + 16]) patchBlock(rng, patch, o, !!form.strings);
  const regs: bigint[] = [];
  for (let i = 0; i < (bitness === 64 ? 16 : 8); i++) {
    let v = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    if (bitness === 32) v &= 0xffffffffn;
    if (form.smallRegs && (i === 0 || i === 2) && rng.int(4) !== 0) {
      const s = BigInt(rng.int(41) - 20);
      v = s & ((1n << 64n) - 1n);
      if (bitness === 32) v &= 0xffffffffn;
      else if (rng.int(3) === 0) v = (v & 0xffffffffn) | (BigInt(rng.u32()) << 32n); // junk above EAX/EDX
    }
    regs.push(v);
  }
  return { regs, rflags: 0x2 | (rng.u32() & FLAGS), memSeed: rng.u32() || 1, memPatch: patch };
}

function vectors(sig: number): number[] {
  return sig === SIG.SIGSEGV || sig === SIG.SIGBUS ? [12, 13, 14] : sig === SIG.SIGILL ? [6] : [];
}

function compare(
  m: TestMachine,
  batch: NativeBatch,
  i: number,
  inp: NativeInput,
  host: NativeOutcome,
): string[] {
  const { cpu, mem } = m;
  const nregs = m.bitness === 64 ? 16 : 8;
  const init = scratchInit(inp.memSeed, inp.memPatch);
  mem.writeBytes(SCRATCH_BASE, init);
  for (let r = 0; r < 16; r++) setGpr(cpu, r, r < nregs ? inp.regs[r] : 0n);
  cpu.state.ripLo = batch.caseStart[i];
  cpu.state.ripHi = 0;
  cpu.setRflags(inp.rflags);
  const res = runUntilExit(cpu, 1000);
  const out: string[] = [];
  if (res.thrown) return [`engine threw ${res.thrown.split('\n').slice(0, 3).join(' | ')}`];
  const rip = getRip(cpu);
  const stop = `exit ${res.exit} vector ${res.vector} at 0x${rip.toString(16)} ${cpu.exitDetail ?? ''}`;
  if (host.kind === 'signal') {
    if (res.exit !== ExitReason.EXCEPTION || !vectors(host.signal).includes(res.vector) || rip !== host.rip)
      return [`want signal ${host.signal} at 0x${host.rip.toString(16)}, engine ${stop}`];
  } else if (res.exit !== ExitReason.EXCEPTION || res.vector !== 3 || rip !== BigInt(batch.caseEnd[i] + 1))
    return [`want the end, engine ${stop}`];
  const wmask = m.bitness === 64 ? (1n << 64n) - 1n : 0xffffffffn;
  for (let r = 0; r < nregs; r++)
    if ((getGpr(cpu, r) & wmask) !== host.regs[r])
      out.push(`reg${r}: want ${host.regs[r].toString(16)} got ${getGpr(cpu, r).toString(16)}`);
  if ((cpu.getRflags() & FLAGS) !== (host.rflags & FLAGS))
    out.push(
      `flags: want ${(host.rflags & FLAGS).toString(16)} got ${(cpu.getRflags() & FLAGS).toString(16)}`,
    );
  const now = mem.readBytes(SCRATCH_BASE, SCRATCH_SIZE);
  for (let o = 0; o < SCRATCH_SIZE && out.length < 10; o++) {
    const want = host.memDiff.has(o) ? host.memDiff.get(o)! : init[o];
    if (now[o] !== want)
      out.push(`mem[+${o.toString(16)}]: want ${want.toString(16)} got ${now[o].toString(16)}`);
  }
  return out;
}

/** Forms that exist outside 64-bit mode (no REX registers or REX.W). */
const ONLY64 = /%r|%sil|pinsrq|pextrq|crc32q|estriq|movq %xmm1, %rax|movq %rax/;

for (const bitness of [64, 32] as const)
  describe(`SIMD integer vs host CPU (${bitness}-bit): MMX, SSE2, SSSE3, SSE4.1, SSE4.2 integer forms`, function () {
    this.timeout(600000);
    const all = forms().filter((f) => bitness === 64 || !ONLY64.test(f.body));
    const bodies: string[] = [];
    const inputs: NativeInput[] = [];
    const owner: number[] = [];
    const rng = new Rng(0x5eed1234);
    all.forEach((form, fi) => {
      for (let v = 0; v < VARIANTS; v++) {
        bodies.push(form.body);
        inputs.push(inputFor(rng, form, bitness));
        owner.push(fi);
      }
    });
    const classes = new Map<string, number[]>();
    owner.forEach((fi, i) => {
      const l = classes.get(all[fi].cls) ?? [];
      l.push(i);
      classes.set(all[fi].cls, l);
    });
    let batch: NativeBatch | undefined;
    let host: NativeOutcome[] = [];
    let m: TestMachine | undefined;

    before(function () {
      requireNativeToolchain(this, bitness);
      batch = buildNativeBatch(bitness, bodies);
      host = batch.run(inputs);
      m = createMachine(bitness, UNMAPPED_PAGES);
      m.cpu.state.cr4 |= 0x600; // OSFXSR, OSXMMEXCPT
      m.cpu.stateChanged();
      loadBatch(m, batch);
    });
    after(() => batch?.dispose());

    for (const [cls, idx] of classes) {
      it(`${cls}: ${idx.length} cases`, function () {
        assert.ok(batch && m);
        const fails: string[] = [];
        for (const i of idx) {
          const d = compare(m, batch, i, inputs[i], host[i]);
          if (d.length)
            fails.push(
              `\`${all[owner[i]].body.split('\n').find((l) => !/^(movdqu|movq %?mm|movq 0x|emms)/.test(l)) ?? ''}\`: ${d.join('; ')}`,
            );
        }
        assert.equal(
          fails.length,
          0,
          `${fails.length}/${idx.length} differ:\n  ${fails.slice(0, 8).join('\n  ')}`,
        );
      });
    }
  });
