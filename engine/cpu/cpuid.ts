/**
 * Default CPUID policy (SDM vol. 2 CPUID): a GenuineIntel family 6 CPU that
 * advertises only what the engine implements. No x87/MMX/SSE yet (EDX bits
 * 0, 23, 25, 26 clear), so software must not use them.
 */
import type { CpuidPolicy, CpuidResult } from './api';

const zero = (): CpuidResult => ({ eax: 0, ebx: 0, ecx: 0, edx: 0 });

/** ASCII of 4 chars as a little-endian u32. */
function str4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

/** Creates the default policy. Leaves: 0, 1, 7, 0x80000000, 0x80000001, 0x80000002-4 (brand), 0x80000008. */
export function defaultCpuidPolicy(): CpuidPolicy {
  return {
    leaf(eax: number, _ecx: number): CpuidResult {
      const r = zero();
      switch (eax >>> 0) {
        case 0:
          r.eax = 7;
          r.ebx = str4('Genu');
          r.edx = str4('ineI');
          r.ecx = str4('ntel');
          break;
        case 1:
          // Family 6, model 0x3a, stepping 9.
          r.eax = 0x000306a9;
          r.ebx = 0x00010800; // CLFLUSH line size 8 qwords, 1 logical processor
          // ECX: CX16 (13), POPCNT (23), HYPERVISOR bit left to the driver.
          r.ecx = ((1 << 13) | (1 << 23)) >>> 0;
          // EDX: VME(1) DE(2) PSE(3) TSC(4) MSR(5) PAE(6) CX8(8) SEP(11) PGE(13) CMOV(15) PAT(16) CLFSH(19)
          r.edx =
            ((1 << 1) |
              (1 << 2) |
              (1 << 3) |
              (1 << 4) |
              (1 << 5) |
              (1 << 6) |
              (1 << 8) |
              (1 << 11) |
              (1 << 13) |
              (1 << 15) |
              (1 << 16) |
              (1 << 19)) >>>
            0;
          break;
        case 7:
          // EBX: BMI1? no. Nothing extra advertised.
          break;
        case 0x80000000:
          r.eax = 0x80000008;
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
