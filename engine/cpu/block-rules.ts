/**
 * Block boundaries: which decoded instructions end a compiled block
 * (control transfers, system instructions, anything that can change the
 * mode, the flags' meaning for the next block, or halt).
 */
import type { Insn } from './decoder';

/** Instructions that end a block (control transfers, system instructions, anything that can change mode or halt). */
export function isTerminator(d: Insn): boolean {
  const op = d.op;
  if (d.bad) return true;
  if (op >= 0x70 && op <= 0x7f) return true;
  if (op >= 0x180 && op <= 0x18f) return true;
  switch (op) {
    case 0x9a:
    case 0xc2:
    case 0xc3:
    case 0xca:
    case 0xcb:
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3:
    case 0xe8:
    case 0xe9:
    case 0xea:
    case 0xeb:
    case 0xf4:
    case 0x8e:
    case 0xc4:
    case 0xc5:
    case 0x1b2:
    case 0x1b4:
    case 0x1b5:
    case 0x07:
    case 0x17:
    case 0x1f:
    case 0x9d:
    case 0xfa:
    case 0xfb:
    case 0x0f:
    case 0x105:
    case 0x106:
    case 0x107:
    case 0x108:
    case 0x109:
    case 0x10b:
    case 0x100:
    case 0x101:
    case 0x120:
    case 0x121:
    case 0x122:
    case 0x123:
    case 0x130:
    case 0x131:
    case 0x132:
    case 0x133:
    case 0x134:
    case 0x135:
    case 0x1a1:
    case 0x1a2:
    case 0x1a9:
    case 0x1aa:
    case 0x1ae:
      return true;
    case 0xff:
      return (d.reg & 7) >= 2 && (d.reg & 7) <= 5;
  }
  // String instructions with REP loop in one call.
  if (d.rep && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f)))
    return true;
  if ((op >= 0x6c && op <= 0x6f) || (op >= 0xe4 && op <= 0xe7) || (op >= 0xec && op <= 0xef)) return true;
  return false;
}
