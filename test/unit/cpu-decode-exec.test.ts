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
import { Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic } from 'iced-x86';
import { ExitReason } from '../../engine/cpu/api';
import { Rng } from '../helpers/x86-gen';
import { CORE_FEATURES, randomEncoding, type DecodeBitness } from '../helpers/x86-corpus';
import {
  createMachine,
  getRip,
  resetSegments,
  setGpr,
  EXIT_NAMES,
  type TestMachine,
} from '../helpers/engine-runner';

const N = Number(process.env.PVSCOPE_DECODE_CASES) || 10000;
const CODE = 0x100000;

function hex(b: Uint8Array, n = b.length): string {
  return Array.from(b.slice(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

interface ExecStats {
  stepped: number;
  lengthChecked: number;
  invalidChecked: number;
  exitLengthChecked: number;
  /** Core instructions (see CORE_FEATURES) the engine raised #UD for: count and first encoding. */
  engineUdCore: Map<string, { count: number; example: string }>;
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
  for (let i = 0; i < 16; i++) setGpr(cpu, i, 0x8000n + BigInt(i * 0x100));
  setGpr(cpu, 4, 0x9800n);
  cpu.state.ripLo = CODE;
  cpu.state.ripHi = 0;
  cpu.setRflags(0x202);
  cpu.state.halted = false;
}

function runExec(bits: DecodeBitness, n: number, seed: number): ExecStats {
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
    invalidChecked: 0,
    exitLengthChecked: 0,
    engineUdCore: new Map(),
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
  const rng = new Rng(seed);
  const instr = new Instruction();
  for (let i = 0; i < n; i++) {
    const buf = randomEncoding(rng, bits);
    const dec = new Decoder(bits, buf, DecoderOptions.None);
    dec.ip = BigInt(CODE);
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
    const start = BigInt(CODE);
    const len = BigInt(instr.length);
    const what = () =>
      `${EXIT_NAMES[r] ?? r}${r === ExitReason.EXCEPTION ? ` vector ${cpu.exitVector}${cpu.exitTrap ? ' (trap)' : ''}` : ''}, rip +${(rip - start).toString()}${r === ExitReason.EXCEPTION && cpu.exitDetail ? `, ${cpu.exitDetail}` : ''}`;
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
    it(`${N} encodings in ${bits}-bit code: no JS error, #UD for invalid, RIP advance = iced length`, function () {
      const st = runExec(bits, N, 0xe8ec + bits);
      const ud = [...st.engineUdCore.entries()].sort((a, b) => b[1].count - a[1].count);
      console.log(
        `      ${bits}-bit: ${st.stepped} stepped, ${st.lengthChecked} RIP advances and ${st.exitLengthChecked} exit lengths checked, ${st.invalidChecked} invalid encodings checked for #UD`,
      );
      if (ud.length)
        console.log(
          `      core instructions the engine raises #UD for: ${ud.map(([k, e]) => `${k} x${e.count} [${e.example}]`).join(', ')}`,
        );
      assert.ok(st.lengthChecked > N / 10, `too few lengths checked (${st.lengthChecked})`);
      const total = [...st.failures.values()].reduce((a, f) => a + f.count, 0);
      const text = [...st.failures.entries()]
        .sort((a, b) => b[1].count - a[1].count)
        .map(([k, f]) => `${k}: ${f.count}\n    ${f.examples.join('\n    ')}`)
        .join('\n  ');
      assert.equal(total, 0, `${total} problems in ${st.failures.size} kinds:\n  ${text}`);
    });
  }
});
