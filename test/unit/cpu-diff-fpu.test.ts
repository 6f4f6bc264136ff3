/**
 * Differential tests of the FPU system instructions against the host CPU
 * (64-bit and `gcc -m32`), through the harness's x87/SSE state support
 * (`NativeInput.fpu`: an FXSAVE image loaded before the body; outcomes carry
 * the FXSAVE image after it or at the fault): FXSAVE/FXRSTOR (legacy and
 * REX.W layouts) round trips through the harness and through memory,
 * FXRSTOR #GP on reserved MXCSR bits, misaligned areas, LDMXCSR/STMXCSR.
 * Vendor differences (MXCSR_MASK, x87 error pointers, MXCSR bit 17) come
 * from test/helpers/vendor-table.ts.
 */
import { strict as assert } from 'node:assert';
import {
  buildFxImage,
  buildNativeBatch,
  f80,
  f80FromNumber,
  requireNativeToolchain,
  SCRATCH_BASE,
  UNMAPPED_PAGES,
  type Bitness,
  type FxFields,
  type NativeBatch,
  type NativeInput,
  type NativeOutcome,
} from '../helpers/native-harness';
import {
  checkCase,
  createMachine,
  loadBatch,
  type CheckOptions,
  type TestMachine,
} from '../helpers/engine-runner';
import { Rng } from '../helpers/x86-gen';
import { hostVendor, engineVendor } from '../helpers/vendor-table';

interface FpuCase {
  name: string;
  body: string;
  input: NativeInput;
  opt?: CheckOptions;
}

/** A varied x87/SSE image: every field non-trivial; `es` sets FSW.ES|B (an unmasked exception pending). */
function richImage(rng: Rng, bits: Bitness, es: boolean, over: FxFields = {}): Uint8Array {
  const top = rng.int(8);
  const st = [
    f80FromNumber(1.5),
    f80FromNumber(-2.25e300),
    f80(0, 0, 0n),
    f80(1, 0x7fff, 1n << 63n), // -inf
    f80(0, 0x7fff, (3n << 62n) | 0x1234n), // QNaN
    f80(0, 0, 0x1234n), // denormal
    f80(0, 0x3fff, 0x4000000000000000n), // unnormal
    f80FromNumber(Math.PI),
  ];
  const xmm = Array.from({ length: 16 }, () => (rng.u64() << 64n) | rng.u64());
  // FSW.ES and B summarise the unmasked exception flags (FXRSTOR recomputes them): keep the image consistent.
  let masks = rng.int(0x40);
  let flags = rng.int(0x40);
  if (es) {
    flags |= 1;
    masks &= ~1;
  } else flags &= masks;
  const fcw = 0x0340 | masks | (rng.int(4) << 10);
  const fsw = (top << 11) | flags | (flags & ~masks & 0x3f ? 0x8080 : 0) | ((rng.int(16) << 8) & 0x4700);
  return buildFxImage(
    {
      fcw,
      fsw,
      ftw: rng.int(256),
      fop: 0x1d9,
      fip: bits === 64 ? 0x00007f12_3456789an : 0x3456789an,
      fdp: bits === 64 ? 0xffff8000_0000abc0n : 0x0000abc0n,
      mxcsr:
        0x1f80 ^ (rng.int(64) | (rng.int(4) << 13) | (rng.bool() ? 0x8000 : 0) | (rng.bool() ? 0x40 : 0)),
      st,
      xmm,
      ...over,
    },
    bits,
  );
}

function regsFor(bits: Bitness, rsi: number): bigint[] {
  const r = new Array<bigint>(bits === 64 ? 16 : 8).fill(0n);
  r[6] = BigInt(rsi);
  r[7] = BigInt(SCRATCH_BASE + 0x800);
  return r;
}

function patchOf(off: number, bytes: Uint8Array): Array<[number, number]> {
  return Array.from(bytes, (b, i) => [off + i, b] as [number, number]);
}

function cases(bits: Bitness): FpuCase[] {
  const rng = new Rng(0x5eed ^ bits);
  const si = bits === 64 ? '%rsi' : '%esi';
  const fxs = bits === 64 ? 'fxsave64' : 'fxsave';
  const fxr = bits === 64 ? 'fxrstor64' : 'fxrstor';
  const out: FpuCase[] = [];
  const area = SCRATCH_BASE + 0x400;
  for (let i = 0; i < 6; i++) {
    // Harness round trip: FXRSTOR before, FXSAVE after, nothing in between (ES clear: the pointer row).
    const es = i % 2 === 0;
    out.push({
      name: `round trip (ES ${es ? 'set' : 'clear'}) #${i}`,
      body: 'nop',
      input: { regs: regsFor(bits, area), rflags: 2, memSeed: 7 + i, fpu: richImage(rng, bits, es) },
    });
  }
  for (let i = 0; i < 4; i++) {
    // FXSAVE to memory: the stored bytes are compared too (FCS/FDS 0 so the host's user selectors do not show).
    out.push({
      name: `${fxs} to memory #${i}`,
      body: `${fxs} (${si})`,
      input: {
        regs: regsFor(bits, area),
        rflags: 2,
        memSeed: 20 + i,
        fpu: richImage(rng, bits, i % 2 === 0),
      },
      opt: { fxsaveAt: [0x400] },
    });
  }
  for (let i = 0; i < 4; i++) {
    // FXRSTOR from memory, then the harness's FXSAVE.
    const src = richImage(rng, bits, true);
    out.push({
      name: `${fxr} from memory #${i}`,
      body: `${fxr} (${si})`,
      input: {
        regs: regsFor(bits, area),
        rflags: 2,
        memSeed: 30 + i,
        memPatch: patchOf(0x400, src),
        fpu: richImage(rng, bits, true),
      },
    });
  }
  {
    // FXSAVE then FXRSTOR of a changed copy: MXCSR rewritten in memory in between.
    out.push({
      name: `${fxs}; change MXCSR; ${fxr}`,
      body: `${fxs} (${si})\n\tmovl $0xffc0, 24(${si})\n\t${fxr} (${si})`,
      input: { regs: regsFor(bits, area), rflags: 2, memSeed: 40, fpu: richImage(rng, bits, false) },
      opt: { fxsaveAt: [0x400] },
    });
  }
  for (const bad of [0x10000, 0x80000000]) {
    const src = richImage(rng, bits, true);
    src[24] = 0x80;
    src[25] = 0x1f;
    src[26] = (bad >>> 16) & 0xff;
    src[27] = bad >>> 24;
    out.push({
      name: `${fxr} with MXCSR ${bad.toString(16)} is #GP(0)`,
      body: `${fxr} (${si})`,
      input: {
        regs: regsFor(bits, area),
        rflags: 0x8d7,
        memSeed: 50,
        memPatch: patchOf(0x400, src),
        fpu: richImage(rng, bits, true),
      },
    });
  }
  for (const mis of [8, 1]) {
    out.push({
      name: `${fxs} misaligned by ${mis} is #GP(0)`,
      body: `${fxs} (${si})`,
      input: { regs: regsFor(bits, area + mis), rflags: 2, memSeed: 60, fpu: richImage(rng, bits, true) },
    });
    out.push({
      name: `${fxr} misaligned by ${mis} is #GP(0)`,
      body: `${fxr} (${si})`,
      input: { regs: regsFor(bits, area + mis), rflags: 2, memSeed: 61, fpu: richImage(rng, bits, true) },
    });
  }
  for (const [name, body] of [
    [fxs, `${fxs} (${si})`],
    [fxr, `${fxr} (${si})`],
  ]) {
    // The area starts on the not-present page above the scratch page: #PF, nothing changed (CR2: vendor row).
    out.push({
      name: `${name} on a not-present page is #PF`,
      body,
      input: {
        regs: regsFor(bits, UNMAPPED_PAGES[1]),
        rflags: 2,
        memSeed: 62,
        fpu: richImage(rng, bits, true),
      },
      opt: { vendorRows: ['wide-pf-cr2'], cr2: BigInt(UNMAPPED_PAGES[1]) },
    });
  }
  for (let i = 0; i < 6; i++) {
    const v = i === 0 ? 0xffff : i === 1 ? 0 : rng.int(0x10000);
    out.push({
      name: `ldmxcsr 0x${v.toString(16)}; stmxcsr`,
      body: `ldmxcsr (${si})\n\tstmxcsr 4(${si})`,
      input: {
        regs: regsFor(bits, area),
        rflags: 2,
        memSeed: 70 + i,
        memPatch: [
          [0x400, v & 255],
          [0x401, v >>> 8],
          [0x402, 0],
          [0x403, 0],
        ],
        fpu: richImage(rng, bits, true),
      },
    });
  }
  for (const [v, rows] of [
    [0x11f80, []],
    [0x80001f80, []],
    [0x21f80, ['mxcsr-mm-bit']],
  ] as Array<[number, string[]]>) {
    out.push({
      name: `ldmxcsr 0x${v.toString(16)}${rows.length ? ' (vendor row)' : ' is #GP(0)'}`,
      body: `ldmxcsr (${si})`,
      input: {
        regs: regsFor(bits, area),
        rflags: 2,
        memSeed: 80,
        memPatch: [0, 1, 2, 3].map((k) => [0x400 + k, (v >>> (8 * k)) & 255] as [number, number]),
        fpu: richImage(rng, bits, true),
      },
      opt: { vendorRows: rows },
    });
  }
  return out;
}

for (const bits of [64, 32] as const) {
  describe(`FPU system state vs host CPU (${bits}-bit): FXSAVE/FXRSTOR/LDMXCSR/STMXCSR through the harness's FXSAVE images`, function () {
    this.timeout(120000);
    const list = cases(bits);
    let batch: NativeBatch | undefined;
    let host: NativeOutcome[] = [];
    let m: TestMachine | undefined;
    before(function () {
      requireNativeToolchain(this, bits);
      console.log(`      host vendor ${hostVendor()}, engine vendor ${engineVendor()}`);
      batch = buildNativeBatch(
        bits,
        list.map((c) => '\t' + c.body),
      );
      host = batch.run(list.map((c) => c.input));
      m = createMachine(bits, UNMAPPED_PAGES);
      loadBatch(m, batch);
    });
    after(() => batch?.dispose());

    it('the harness returns an FXSAVE image for every case with one', function () {
      assert.ok(host.length === list.length);
      for (const h of host) assert.ok(h.fpu && h.fpu.length === 512);
      // the plain round trip gives back the loaded XMM registers and ST values (vendor-independent fields)
      const a = list[0].input.fpu!;
      const b = host[0].fpu!;
      assert.deepEqual(
        b.slice(32, 160 + 16 * (bits === 64 ? 16 : 8)).filter((_, i) => (i < 128 ? i % 16 < 10 : true)),
        a.slice(32, 160 + 16 * (bits === 64 ? 16 : 8)).filter((_, i) => (i < 128 ? i % 16 < 10 : true)),
      );
    });

    it(`${list.length} cases agree with the host`, function () {
      assert.ok(batch && m);
      const failures: string[] = [];
      list.forEach((c, i) => {
        const d = checkCase(m!, batch!, i, c.input, host[i], c.opt);
        if (d.length)
          failures.push(
            `${c.name} \`${c.body.replace(/\n\t/g, '; ')}\` (host ${host[i].kind}${host[i].kind === 'signal' ? ' ' + (host[i] as { signal: number }).signal : ''}):\n      ${d.join('\n      ')}`,
          );
      });
      assert.equal(
        failures.length,
        0,
        `${failures.length} of ${list.length} differ:\n  ${failures.join('\n  ')}`,
      );
    });
  });
}
