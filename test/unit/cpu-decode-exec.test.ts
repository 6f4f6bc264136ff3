/**
 * Decoder agreement on the execution path, and bad input: every encoding of
 * a seeded random corpus (test/helpers/x86-corpus.ts) is single-stepped by
 * the CPU at CPL 3 in 16-, 32- and 64-bit code (flat segments, paging on,
 * every exception, INT n, SYSCALL/SYSENTER and privileged instruction
 * intercepted), and checked against iced-x86:
 *  - nothing throws out of the engine, whatever the bytes;
 *  - an encoding iced calls invalid raises #UD (or #GP when longer than 15 bytes);
 *  - a valid non-branch instruction that completes leaves RIP = start + iced length;
 *  - an intercepted INT n / SYSCALL / SYSENTER / privileged instruction reports
 *    `exitInsnLength` = iced length;
 *  - a fault leaves RIP at the instruction (restartable), a trap after it.
 * `PVSCOPE_DECODE_CASES=<n>` changes the corpus size per mode.
 */
import { strict as assert } from 'node:assert';
import { Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind } from 'iced-x86';
import { ExitReason } from '../../engine/cpu/api';
import { Rng } from '../helpers/x86-gen';
import { CORE_FEATURES, ENCODING_BUFFER, randomEncoding, type DecodeBitness } from '../helpers/x86-corpus';
import {
  createMachine,
  getRip,
  resetSegments,
  setGpr,
  EXIT_NAMES,
  type TestMachine,
} from '../helpers/engine-runner';

const N = Number(process.env.PVSCOPE_DECODE_CASES) || 10000;
/** Linear address of the instruction under test. */
const CODE = 0x100000;
/** Instruction pointer of the instruction under test (16-bit code: CS base = CODE - IP16). */
const IP16 = 0x1000;

/**
 * Encodings that must always be checked (earlier disagreements and edge
 * cases), per bitness: MOV CR/DR with mod != 11 (mod is ignored), LOCK on
 * branches and non-lockable instructions, F2/F3 with 0F AE, REX.R with MOV
 * DR, 66 on near branches in 64-bit mode, IP wrap in 16-bit code.
 */
const KNOWN: Record<DecodeBitness, string[]> = {
  16: [
    '0f 20 00',
    '0f 22 18',
    '0f 21 3c',
    '0f 23 84 00 00',
    'f0 74 00',
    'f0 eb 00',
    'f0 c3',
    'f0 e8 00 00',
    'f0 01 c0',
    'f0 90',
    'f2 0f ae 38',
    '67 f2 0f ae b8 cb fa 96 11',
    'f2 0f ae e8',
    '66 e8 00 00 00 00',
    'e8 fd ff',
    '66 eb fe',
    'e9 00 f0',
  ],
  32: [
    '0f 20 00',
    '0f 22 18',
    '0f 21 3c',
    '0f 23 84 00 00 00 00 00',
    'f0 74 00',
    'f0 e9 00 00 00 00',
    'f0 c3',
    'f0 e8 00 00 00 00',
    'f0 ff e0',
    'f0 0f 84 00 00 00 00',
    'f0 01 c0',
    'f0 90',
    'f0 8b 00',
    'f2 0f ae 38',
    'f2 26 0f ae 3a',
    'f2 0f ae e8',
    'f3 0f ae 38',
    '66 e8 00 00',
    '66 e9 fd ff',
    'e8 fb ff ff ff',
  ],
  64: [
    '0f 20 00',
    '0f 22 18',
    '0f 21 3c',
    '0f 23 84 00 00 00 00 00',
    'f0 74 00',
    'f0 e9 00 00 00 00',
    'f0 c3',
    'f0 e8 00 00 00 00',
    'f0 ff e0',
    'f0 0f 84 00 00 00 00',
    'f0 01 c0',
    'f0 90',
    'f0 8b 00',
    'f2 0f ae 38',
    'f2 49 0f ae ea',
    'f2 66 f2 0f ae ee',
    '4e 0f 21 2c',
    '4c 0f 21 c0',
    '44 0f 20 c8',
    '44 0f 20 c0',
    '66 e8 00 00 00 00',
    '66 e9 00 00 00 00',
    '48 e8 00 00 00 00',
    '66 0f 84 00 00 00 00',
    'e8 fb ff ff ff',
  ],
};

function fromHex(h: string): Uint8Array {
  const b = new Uint8Array(ENCODING_BUFFER);
  h.split(' ').forEach((x, i) => (b[i] = parseInt(x, 16)));
  return b;
}

function hex(b: Uint8Array, n = b.length): string {
  return Array.from(b.slice(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

interface ExecStats {
  stepped: number;
  lengthChecked: number;
  /** Near branches whose target or pushed return address was checked. */
  branchChecked: number;
  invalidChecked: number;
  exitLengthChecked: number;
  /** Core instructions (see CORE_FEATURES) the engine raised #UD for: count and first encoding. */
  engineUdCore: Map<string, { count: number; example: string }>;
  /** Non-core instructions (features the engine's CPUID does not promise) that completed. */
  nonCoreDone: Map<string, { count: number; example: string }>;
  /** Problems grouped by kind: count and a few examples each. */
  failures: Map<string, { count: number; examples: string[] }>;
}

/** True when iced decodes `buf` as valid once its LOCK (F0) prefixes are dropped. */
function validWithoutLock(buf: Uint8Array, bits: DecodeBitness, instr: Instruction): boolean {
  let i = 0;
  const kept: number[] = [];
  let sawLock = false;
  for (; i < 15; i++) {
    const b = buf[i];
    if (b === 0xf0) {
      sawLock = true;
      continue;
    }
    if (
      [0x66, 0x67, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65].includes(b) ||
      (bits === 64 && (b & 0xf0) === 0x40)
    ) {
      kept.push(b);
      continue;
    }
    break;
  }
  if (!sawLock) return false;
  const rest = Uint8Array.from([...kept, ...buf.slice(i)]);
  const d = new Decoder(bits, rest, DecoderOptions.None);
  d.decodeOut(instr);
  d.free();
  return !instr.isInvalid;
}

function prepare(m: TestMachine, bits: DecodeBitness): void {
  const { cpu } = m;
  resetSegments(cpu, bits, 3);
  if (bits === 16) cpu.setSegmentRaw(1, 0x0b, CODE - IP16, 0, 0xffff, 0x9b | (3 << 5));
  for (let i = 0; i < 16; i++) setGpr(cpu, i, 0x8000n + BigInt(i * 0x100));
  setGpr(cpu, 4, 0x9800n);
  cpu.state.ripLo = bits === 16 ? IP16 : CODE;
  cpu.state.ripHi = 0;
  cpu.setRflags(0x202);
  cpu.state.halted = false;
}

function runExec(bits: DecodeBitness, buffers: Iterable<Uint8Array>): ExecStats {
  const m = createMachine(bits === 64 ? 64 : 32);
  const { cpu, mem } = m;
  cpu.interceptSoftInt.fill(1);
  cpu.interceptSyscall = true;
  cpu.interceptSysenter = true;
  cpu.interceptPrivileged = true;
  cpu.singleStep = true;
  const st: ExecStats = {
    stepped: 0,
    lengthChecked: 0,
    branchChecked: 0,
    invalidChecked: 0,
    exitLengthChecked: 0,
    engineUdCore: new Map(),
    nonCoreDone: new Map(),
    failures: new Map(),
  };
  const fail = (kind: string, msg: string) => {
    const f = st.failures.get(kind) ?? { count: 0, examples: [] };
    f.count++;
    if (f.examples.length < 6) f.examples.push(msg);
    st.failures.set(kind, f);
  };
  const probe = new Instruction();
  const ipMask = bits === 64 ? (1n << 64n) - 1n : bits === 32 ? 0xffffffffn : 0xffffn;
  const instr = new Instruction();
  const start = BigInt(bits === 16 ? IP16 : CODE);
  const stackWord = bits === 64 ? 8 : bits === 32 ? 4 : 2;
  for (const buf of buffers) {
    const dec = new Decoder(bits, buf, DecoderOptions.None);
    dec.ip = start;
    dec.decodeOut(instr);
    dec.free();
    mem.writeBytes(CODE, buf);
    cpu.flushCodeCache();
    let r: number;
    try {
      prepare(m, bits);
      r = cpu.run(1);
    } catch (e) {
      fail(
        'engine threw',
        `[${hex(buf, 15)}] engine threw: ${((e as Error)?.stack ?? String(e)).split('\n').slice(0, 3).join(' | ')}`,
      );
      continue;
    }
    st.stepped++;
    const rip = getRip(cpu);
    const len = BigInt(instr.length);
    const what = () =>
      `${EXIT_NAMES[r] ?? r}${r === ExitReason.EXCEPTION ? ` vector ${cpu.exitVector}${cpu.exitTrap ? ' (trap)' : ''}` : ''}, rip +${(rip - start).toString()}${r === ExitReason.EXCEPTION && (cpu.exitVector === 6 || cpu.exitVector === 7) && cpu.exitDetail ? `, ${cpu.exitDetail}` : ''}`;
    if (instr.isInvalid) {
      st.invalidChecked++;
      if (r !== ExitReason.EXCEPTION || (cpu.exitVector !== 6 && cpu.exitVector !== 13) || rip !== start) {
        const kind = validWithoutLock(buf, bits, probe)
          ? probe.flowControl !== FlowControl.Next
            ? 'LOCK prefix on a branch (Jcc/JMP/CALL/RET/...) does not raise #UD'
            : `LOCK prefix on a non-lockable instruction (${Mnemonic[probe.mnemonic]}) does not raise #UD`
          : 'invalid encoding does not raise #UD';
        fail(kind, `[${hex(buf, 15)}] invalid for iced: want #UD at the instruction, engine: ${what()}`);
      }
      continue;
    }
    const name = `${Mnemonic[instr.mnemonic]} [${hex(buf, instr.length)}]`;
    const core = Array.from(instr.cpuidFeatures()).every((f) => CORE_FEATURES.has(f));
    if (!core && (r === ExitReason.STEP || r === ExitReason.PRIVILEGED)) {
      const k = Mnemonic[instr.mnemonic];
      const e = st.nonCoreDone.get(k) ?? { count: 0, example: hex(buf, instr.length) };
      e.count++;
      st.nonCoreDone.set(k, e);
    }
    switch (r) {
      case ExitReason.STEP: {
        const repString =
          instr.isStringInstruction && (instr.hasRepPrefix || instr.hasRepePrefix || instr.hasRepnePrefix);
        if (instr.flowControl === FlowControl.Next && !repString) {
          st.lengthChecked++;
          if (rip !== ((start + len) & ipMask))
            fail(
              `${Mnemonic[instr.mnemonic]}: RIP advance`,
              `${name}: iced length ${len}, engine stepped to ${what()}`,
            );
        }
        const k = instr.op0Kind;
        const rel = k === OpKind.NearBranch16 || k === OpKind.NearBranch32 || k === OpKind.NearBranch64;
        const fc = instr.flowControl;
        if (
          rel &&
          (fc === FlowControl.ConditionalBranch ||
            fc === FlowControl.UnconditionalBranch ||
            fc === FlowControl.Call)
        ) {
          st.branchChecked++;
          const target = instr.nearBranchTarget;
          const next = (start + len) & ipMask;
          const ok = fc === FlowControl.ConditionalBranch ? rip === target || rip === next : rip === target;
          if (!ok)
            fail(
              `${Mnemonic[instr.mnemonic]}: branch target`,
              `${name}: iced target 0x${target.toString(16)} (next 0x${next.toString(16)}), engine ${what()}`,
            );
        }
        if ((fc === FlowControl.Call || fc === FlowControl.IndirectCall) && !instr.isCallFar) {
          st.branchChecked++;
          const size = -instr.stackPointerIncrement; // 2, 4 or 8: the call's operand size
          const sp = cpu.state.gprLo[4] >>> 0;
          const ret =
            size === 8
              ? mem.read32(sp) + mem.read32(sp + 4) * 2 ** 32
              : size === 4
                ? mem.read32(sp)
                : mem.read16(sp);
          const want = Number((start + len) & (size === 2 ? 0xffffn : ipMask));
          if (sp !== 0x9800 - size || ret !== want) {
            fail(
              `${Mnemonic[instr.mnemonic]}: return address`,
              `${name}: want ${size}-byte return address 0x${want.toString(16)} at 0x${(0x9800 - size).toString(16)}, engine pushed 0x${ret.toString(16)} at 0x${sp.toString(16)}`,
            );
          }
        }
        break;
      }
      case ExitReason.SOFT_INT:
      case ExitReason.SYSCALL:
      case ExitReason.SYSENTER:
      case ExitReason.PRIVILEGED:
        st.exitLengthChecked++;
        if (cpu.exitInsnLength !== instr.length || rip !== start) {
          fail(
            `${Mnemonic[instr.mnemonic]}: exit length`,
            `${name}: iced length ${len}, engine ${what()} with exitInsnLength ${cpu.exitInsnLength}`,
          );
        }
        break;
      case ExitReason.EXCEPTION:
        if (cpu.exitVector === 6 && core && !/^Ud[012]$/.test(Mnemonic[instr.mnemonic])) {
          const k = Mnemonic[instr.mnemonic];
          const e = st.engineUdCore.get(k) ?? { count: 0, example: hex(buf, instr.length) };
          e.count++;
          st.engineUdCore.set(k, e);
        }
        if (cpu.exitTrap) {
          if (rip !== ((start + len) & ipMask) && instr.flowControl !== FlowControl.Interrupt) {
            fail(
              `${Mnemonic[instr.mnemonic]}: trap RIP`,
              `${name}: trap should leave rip after the instruction (+${len}), engine ${what()}`,
            );
          }
        } else if (rip !== start) {
          fail(
            `${Mnemonic[instr.mnemonic]}: fault RIP`,
            `${name}: fault should leave rip at the instruction, engine ${what()}`,
          );
        }
        break;
      default:
        break;
    }
  }
  instr.free();
  probe.free();
  return st;
}

describe('CPU executes random encodings consistently with iced-x86 (single-step, CPL 3)', function () {
  this.timeout(300000);
  for (const bits of [16, 32, 64] as const) {
    const report = (st: ExecStats) => {
      const ud = [...st.engineUdCore.entries()].sort((a, b) => b[1].count - a[1].count);
      console.log(
        `      ${bits}-bit: ${st.stepped} stepped, ${st.lengthChecked} RIP advances, ${st.branchChecked} branch targets/return addresses and ${st.exitLengthChecked} exit lengths checked, ${st.invalidChecked} invalid encodings checked for #UD`,
      );
      if (ud.length)
        console.log(
          `      core instructions the engine raises #UD for: ${ud.map(([k, e]) => `${k} x${e.count} [${e.example}]`).join(', ')}`,
        );
      const done = [...st.nonCoreDone.entries()].sort((a, b) => b[1].count - a[1].count);
      if (done.length)
        console.log(
          `      non-core instructions the engine executed: ${done.map(([k, e]) => `${k} x${e.count} [${e.example}]`).join(', ')}`,
        );
      const total = [...st.failures.values()].reduce((a, f) => a + f.count, 0);
      const text = [...st.failures.entries()]
        .sort((a, b) => b[1].count - a[1].count)
        .map(([k, f]) => `${k}: ${f.count}\n    ${f.examples.join('\n    ')}`)
        .join('\n  ');
      assert.equal(total, 0, `${total} problems in ${st.failures.size} kinds:\n  ${text}`);
    };
    it(`${KNOWN[bits].length} known edge encodings in ${bits}-bit code`, function () {
      report(runExec(bits, KNOWN[bits].map(fromHex)));
    });
    it(`${N} random encodings in ${bits}-bit code: no JS error, #UD for invalid, RIP advance = iced length`, function () {
      const rng = new Rng(0xe8ec + bits);
      function* corpus(): Generator<Uint8Array> {
        for (let i = 0; i < N; i++) yield randomEncoding(rng, bits);
      }
      const st = runExec(bits, corpus());
      assert.ok(st.lengthChecked > N / 10, `too few lengths checked (${st.lengthChecked})`);
      report(st);
    });
  }
});
