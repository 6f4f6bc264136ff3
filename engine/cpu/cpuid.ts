/**
 * Default CPUID policy (SDM vol. 2 "CPUID", vol. 1 ch. 13 for leaf 0xD): one
 * documented CPU model, "pvscope virtual CPU", vendor GenuineIntel, family 6
 * model 0x3a stepping 9 (an Ivy Bridge signature), one core, one thread. It
 * advertises exactly what the engine implements: x87, MMX, FXSR, SSE through
 * SSE4.2 (with POPCNT, CX16, MOVBE), XSAVE with XCR0 = x87|SSE (XSAVEOPT,
 * XSAVEC, XGETBV with ECX = 1; no XSAVES), and nothing of AVX, FMA,
 * AVX-512, PCLMULQDQ, AES, RDRAND or the leaf-7 extensions. Cache and TLB
 * leaves 2 and 4 (Intel's), 0x80000006 (L2) and 0x80000008 (address sizes)
 * describe a 32 KiB L1d / 32 KiB L1i / 256 KiB L2 / 8 MiB L3 hierarchy with
 * 64-byte lines. docs/cpu-system.md has the table.
 */
import type { CpuidPolicy, CpuidResult } from './api';

const zero = (): CpuidResult => ({ eax: 0, ebx: 0, ecx: 0, edx: 0 });

/** ASCII of 4 chars as a little-endian u32. */
function str4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

const bits = (...b: number[]): number => b.reduce((m, x) => (m | (1 << x)) >>> 0, 0);

/** Highest basic leaf (leaf 0 EAX): 0xD, the XSAVE leaf. */
export const CPUID_MAX_BASIC = 0xd;
/** Highest extended leaf (0x80000000 EAX). */
export const CPUID_MAX_EXTENDED = 0x80000008;

/** CR4.OSXSAVE (bit 18): CPUID.1:ECX.OSXSAVE mirrors it. */
const CR4_OSXSAVE = 1 << 18;

/** CPUID.1:ECX feature bits (SDM vol. 2 table 3-10). */
export const enum Cpuid1Ecx {
  SSE3 = 1 << 0,
  SSSE3 = 1 << 9,
  CX16 = 1 << 13,
  SSE4_1 = 1 << 19,
  SSE4_2 = 1 << 20,
  MOVBE = 1 << 22,
  POPCNT = 1 << 23,
  XSAVE = 1 << 26,
  OSXSAVE = 1 << 27,
  HYPERVISOR = 1 << 31,
}

/** CPUID.1:EDX feature bits (SDM vol. 2 table 3-11). */
export const enum Cpuid1Edx {
  FPU = 1 << 0,
  MMX = 1 << 23,
  FXSR = 1 << 24,
  SSE = 1 << 25,
  SSE2 = 1 << 26,
}

/**
 * Leaf 1 ECX without OSXSAVE: SSE3 (0), SSSE3 (9), CX16 (13), SSE4.1 (19),
 * SSE4.2 (20), MOVBE (22), POPCNT (23), XSAVE (26). Not offered: PCLMULQDQ (1),
 * MONITOR (3), VMX (5), FMA (12), PCID (17), X2APIC (21), AES (25), AVX (28),
 * F16C (29), RDRAND (30).
 */
export const CPUID_1_ECX = bits(0, 9, 13, 19, 20, 22, 23, 26);
/**
 * Leaf 1 EDX: FPU (0), VME (1), DE (2), PSE (3), TSC (4), MSR (5), PAE (6),
 * CX8 (8), SEP (11), PGE (13), CMOV (15), PAT (16), CLFSH (19), MMX (23),
 * FXSR (24), SSE (25), SSE2 (26).
 */
export const CPUID_1_EDX = bits(0, 1, 2, 3, 4, 5, 6, 8, 11, 13, 15, 16, 19, 23, 24, 25, 26);

/** XCR0 bits the engine supports (CPUID.(EAX=0DH,ECX=0):EAX): x87 (bit 0) and SSE (bit 1). */
export const XCR0_SUPPORTED = 3;
/** XSAVE area size for x87|SSE: 512-byte legacy region + 64-byte XSAVE header (SDM vol. 1 §13.4). */
export const XSAVE_AREA_SIZE = 576;
/**
 * CPUID.(EAX=0DH,ECX=1):EAX: XSAVEOPT (0), XSAVEC (1), XGETBV with ECX = 1
 * (2). XSAVES/XRSTORS (3) and XFD (4) are not implemented.
 */
export const CPUID_D1_EAX = bits(0, 1, 2);

/**
 * Leaf 2 (SDM vol. 2 table 3-12): AL = 01 (one query); descriptors 63 (data TLB
 * 2M/4M 32 entries + 1G 4 entries), 03 (data TLB 4K 64 entries 4-way), 76
 * (instruction TLB 2M/4M 8 entries), FF (caches in leaf 4), B5 (instruction TLB
 * 4K 64 entries 8-way), F0 (64-byte prefetching), CA (shared L2 TLB 4K 512
 * entries 4-way).
 */
const LEAF2: CpuidResult = { eax: 0x76036301, ebx: 0x00f0b5ff, ecx: 0, edx: 0x00ca0000 };

/**
 * Leaf 4 sub-leaves (deterministic cache parameters, SDM vol. 2 table 3-8):
 * EAX type (1 data, 2 instruction, 3 unified) | level << 5 | self-initialising
 * (bit 8), no sharing (one thread, one core); EBX (ways-1) << 22 |
 * (partitions-1) << 12 | (line-1); ECX sets-1; EDX bit 1 inclusive, bit 2
 * complex indexing. Sub-leaf 4 on: type 0 (no more caches).
 */
const LEAF4: readonly CpuidResult[] = [
  { eax: 0x121, ebx: (7 << 22) | 63, ecx: 63, edx: 0 }, // L1d 32 KiB, 8-way, 64 sets
  { eax: 0x122, ebx: (7 << 22) | 63, ecx: 63, edx: 0 }, // L1i 32 KiB, 8-way, 64 sets
  { eax: 0x143, ebx: (7 << 22) | 63, ecx: 511, edx: 0 }, // L2 256 KiB, 8-way, 512 sets
  { eax: 0x163, ebx: (15 << 22) | 63, ecx: 8191, edx: 6 }, // L3 8 MiB, 16-way, 8192 sets, inclusive
];

/**
 * Creates the default policy. `cr4` is the CPU's CR4 while a CPUID instruction
 * executes; leaf 1 ECX.OSXSAVE (bit 27) mirrors its OSXSAVE bit (SDM vol. 2
 * CPUID: "OSXSAVE: a value of 1 indicates that the OS has set CR4.OSXSAVE").
 * Callers outside an executing CPUID (tests, tools) may omit it: OSXSAVE is
 * then clear. Leaves above the maximum return zeros (the Intel rule of
 * returning the highest basic leaf's data is not followed: zeros, as Xen
 * does for its guests).
 */
export function defaultCpuidPolicy(): CpuidPolicy {
  return {
    leaf(eax: number, ecx: number, cr4?: number): CpuidResult {
      const r = zero();
      const sub = ecx >>> 0;
      switch (eax >>> 0) {
        case 0:
          r.eax = CPUID_MAX_BASIC;
          r.ebx = str4('Genu');
          r.edx = str4('ineI');
          r.ecx = str4('ntel');
          break;
        case 1:
          // Family 6, model 0x3a, stepping 9.
          r.eax = 0x000306a9;
          // EBX: APIC ID 0, 1 logical processor, CLFLUSH line size 8 qwords, brand index 0.
          r.ebx = 0x00010800;
          r.ecx = (CPUID_1_ECX | (cr4 !== undefined && cr4 & CR4_OSXSAVE ? Cpuid1Ecx.OSXSAVE : 0)) >>> 0;
          r.edx = CPUID_1_EDX;
          break;
        case 2:
          return { ...LEAF2 };
        case 4:
          if (sub < LEAF4.length) return { ...LEAF4[sub] };
          break;
        case 7:
          // Sub-leaf 0: EAX = 0 (no further sub-leaves); none of FSGSBASE, BMI1/2,
          // AVX2, ERMS, INVPCID, SMEP/SMAP, AVX-512, CLFLUSHOPT... is offered.
          break;
        case 0xd:
          if (sub === 0) {
            r.eax = XCR0_SUPPORTED; // XCR0 bits 31:0 that may be set
            r.ebx = XSAVE_AREA_SIZE; // size for the features enabled in XCR0 (x87 alone needs it too)
            r.ecx = XSAVE_AREA_SIZE; // size for every supported feature
            r.edx = 0; // XCR0 bits 63:32
          } else if (sub === 1) {
            r.eax = CPUID_D1_EAX;
            r.ebx = XSAVE_AREA_SIZE; // XSAVEC size for XCR0 | IA32_XSS (legacy + header)
          }
          // Sub-leaves 2-63: no state component beyond x87/SSE is supported.
          break;
        case 0x80000000:
          r.eax = CPUID_MAX_EXTENDED;
          break;
        case 0x80000001:
          // ECX: LAHF/SAHF in 64-bit (0), LZCNT/ABM (5). EDX: SYSCALL(11) NX(20) 1GB pages(26) RDTSCP(27) LM(29).
          r.ecx = (1 << 0) | (1 << 5);
          r.edx = ((1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29)) >>> 0;
          break;
        case 0x80000002:
        case 0x80000003:
        case 0x80000004: {
          const brand = 'pvscope virtual CPU'.padEnd(48, ' ');
          const base = ((eax >>> 0) - 0x80000002) * 16;
          r.eax = str4(brand.slice(base, base + 4));
          r.ebx = str4(brand.slice(base + 4, base + 8));
          r.ecx = str4(brand.slice(base + 8, base + 12));
          r.edx = str4(brand.slice(base + 12, base + 16));
          break;
        }
        case 0x80000005:
          // Reserved on Intel (AMD's L1 cache/TLB leaf): zeros.
          break;
        case 0x80000006:
          // ECX: L2 size in KiB (31:16) = 256, associativity (15:12) 6 = 8-way, line size (7:0) = 64.
          r.ecx = (256 << 16) | (6 << 12) | 64;
          break;
        case 0x80000007:
          // EDX bit 8 (invariant TSC) clear: Xen hides it from guests that may migrate.
          break;
        case 0x80000008:
          r.eax = 0x3028; // 40-bit physical, 48-bit linear addresses
          break;
      }
      return r;
    },
  };
}

/** Physical address width reported by the default policy (bits); page-table bits above it are reserved. */
export const MAXPHYADDR = 40;
