/**
 * Decoder agreement: the engine's instruction decoder (engine/cpu/decoder.ts)
 * against iced-x86 over a large seeded corpus of random encodings in 16-,
 * 32- and 64-bit modes. For every encoding iced decodes as valid and the
 * engine decodes without error, the length must agree, and so must the
 * ModRM memory operand (base, index, scale, displacement) and the first
 * immediate. `PVSCOPE_DECODE_CASES=<n>` changes the corpus size per mode.
 */
import { strict as assert } from 'node:assert';
import { Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register } from 'iced-x86';
import { decode } from '../../engine/cpu/decoder';
import { Rng } from '../helpers/x86-gen';
import { CORE_FEATURES, icedGpr, randomEncoding, type DecodeBitness } from '../helpers/x86-corpus';

const N = Number(process.env.PVSCOPE_DECODE_CASES) || 20000;

function hex(b: Uint8Array, n = b.length): string {
  return Array.from(b.slice(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

interface Stats {
  icedValid: number;
  compared: number;
  comparedCore: number;
  nonCoreLength: number;
  nonCoreExamples: string[];
  engineRejectsCore: Map<string, number>;
  engineRejectsOther: number;
  engineAcceptsInvalid: number;
  failures: string[];
}

function immBits(k: OpKind): number {
  switch (k) {
    case OpKind.Immediate8:
    case OpKind.Immediate8to16:
    case OpKind.Immediate8to32:
    case OpKind.Immediate8to64:
      return 8;
    case OpKind.Immediate16:
      return 16;
    case OpKind.Immediate32:
    case OpKind.Immediate32to64:
      return 32;
    default:
      return 0;
  }
}

function runCorpus(bitness: DecodeBitness, n: number, seed: number): Stats {
  const rng = new Rng(seed);
  const st: Stats = {
    icedValid: 0,
    compared: 0,
    comparedCore: 0,
    nonCoreLength: 0,
    nonCoreExamples: [],
    engineRejectsCore: new Map(),
    engineRejectsOther: 0,
    engineAcceptsInvalid: 0,
    failures: [],
  };
  const fail = (msg: string) => {
    if (st.failures.length < 40) st.failures.push(msg);
    else st.failures.length++;
  };
  const instr = new Instruction();
  for (let i = 0; i < n; i++) {
    const buf = randomEncoding(rng, bitness);
    const dec = new Decoder(bitness, buf, DecoderOptions.None);
    dec.decodeOut(instr);
    const icedOk = !instr.isInvalid;
    let immEncoded = false;
    if (icedOk) {
      const co = dec.getConstantOffsets(instr);
      immEncoded = co.hasImmediate;
      co.free();
    }
    dec.free();
    let ins;
    try {
      ins = decode((k) => (k < buf.length ? buf[k] : -1), bitness / 8, 0, 0);
    } catch (e) {
      fail(`[${hex(buf, 15)}] engine decoder threw: ${(e as Error).message}`);
      continue;
    }
    if (!ins) {
      fail(`[${hex(buf, 15)}] engine decoder asked for bytes beyond ${buf.length}`);
      continue;
    }
    const engineOk = ins.bad === 0;
    if (!icedOk) {
      if (engineOk) st.engineAcceptsInvalid++;
      continue;
    }
    st.icedValid++;
    const name = `${Mnemonic[instr.mnemonic]} [${hex(buf, instr.length)}]`;
    if (!engineOk) {
      const core = Array.from(instr.cpuidFeatures()).every((f) => CORE_FEATURES.has(f));
      if (core) {
        const m = Mnemonic[instr.mnemonic];
        st.engineRejectsCore.set(m, (st.engineRejectsCore.get(m) ?? 0) + 1);
      } else st.engineRejectsOther++;
      continue;
    }
    st.compared++;
    if (!Array.from(instr.cpuidFeatures()).every((f) => CORE_FEATURES.has(f))) {
      // Not a core instruction (SSE, AVX, 3DNow!, ...): the engine raises #UD for it; lengths are informative.
      if (ins.len !== instr.length) {
        st.nonCoreLength++;
        if (st.nonCoreExamples.length < 8)
          st.nonCoreExamples.push(`${name}: iced ${instr.length}, engine ${ins.len}`);
      }
      continue;
    }
    st.comparedCore++;
    if (ins.len !== instr.length) {
      fail(`${name}: length iced ${instr.length}, engine ${ins.len}`);
      continue;
    }
    // ModRM memory operand.
    let memOp = -1;
    for (let k = 0; k < instr.opCount; k++) if (instr.opKind(k) === OpKind.Memory) memOp = k;
    if (memOp >= 0 && ins.hasModrm) {
      if (!ins.isMem) {
        fail(`${name}: iced has a memory operand, engine decoded a register (mod=${ins.mod})`);
        continue;
      }
      const base = icedGpr(instr.memoryBase);
      const index = icedGpr(instr.memoryIndex);
      const asz = ins.asz * 8;
      const dmask = asz === 64 ? (1n << 64n) - 1n : (1n << BigInt(asz)) - 1n;
      if (base === -2) {
        if (!ins.ripRel) fail(`${name}: iced RIP-relative, engine not`);
        const want = (instr.memoryDisplacement - BigInt(instr.length)) & 0xffffffffn;
        if ((BigInt(ins.disp) & 0xffffffffn) !== want)
          fail(`${name}: rip disp iced ${want}, engine ${ins.disp}`);
        continue;
      }
      const got = `base=${ins.base} index=${ins.index} scale=${1 << ins.scale} disp=${BigInt(ins.disp) & dmask}`;
      const want = `base=${base} index=${index} scale=${index === -1 ? 1 << ins.scale : instr.memoryIndexScale} disp=${instr.memoryDisplacement & dmask}`;
      if (ins.ripRel || got !== want)
        fail(`${name}: memory operand iced ${want}, engine ${got}${ins.ripRel ? ' rip' : ''}`);
    }
    // First encoded immediate (raw bits; D0/D1 shifts have an implicit 1 that is not encoded).
    for (let k = 0; immEncoded && k < instr.opCount; k++) {
      const bits = immBits(instr.opKind(k));
      if (!bits) continue;
      const m = (1n << BigInt(bits)) - 1n;
      const want = instr.immediate(k) & m;
      const got = BigInt(ins.imm >>> 0) & m;
      if (got !== want) fail(`${name}: immediate iced 0x${want.toString(16)}, engine 0x${got.toString(16)}`);
      break;
    }
  }
  instr.free();
  return st;
}

describe('CPU decoder agrees with iced-x86', function () {
  this.timeout(300000);
  for (const bitness of [16, 32, 64] as const) {
    it(`${N} random encodings, ${bitness}-bit mode: lengths, memory operands and immediates agree`, function () {
      const st = runCorpus(bitness, N, 0xdec0de + bitness);
      const rejected = [...st.engineRejectsCore.entries()].sort((a, b) => b[1] - a[1]);
      console.log(
        `      ${bitness}-bit: ${st.icedValid} valid for iced, ${st.compared} decoded by both, ${st.comparedCore} core compared, ` +
          `${st.nonCoreLength} non-core length differences (engine raises #UD for those), ` +
          `${st.engineRejectsOther} non-core rejected by the engine (SSE/AVX/...), ` +
          `${st.engineAcceptsInvalid} invalid for iced but accepted by the engine decoder`,
      );
      if (st.nonCoreExamples.length) console.log(`      non-core examples: ${st.nonCoreExamples.join('; ')}`);
      if (rejected.length) {
        console.log(
          `      core instructions the engine decoder rejects: ${rejected.map(([m, c]) => `${m}(${c})`).join(' ')}`,
        );
      }
      assert.ok(st.comparedCore > N / 4, `too few instructions compared (${st.comparedCore})`);
      assert.equal(
        st.failures.length,
        0,
        `${st.failures.length} disagreements:\n${st.failures.filter(Boolean).join('\n')}`,
      );
    });
  }
});
