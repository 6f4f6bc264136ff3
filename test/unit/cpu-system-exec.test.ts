/**
 * The system half of the CPU driven by real code on the engine's CPU
 * (engine/cpu/cpu.ts): privilege transitions through the IDT and IRET,
 * #GP error codes, #DF escalation and triple-fault shutdown, switching from
 * 32-bit protected mode into IA-32e mode with MOV CR / WRMSR and a far
 * jump, SYSRET/SYSCALL round trips, TSS I/O bitmap, and the privileged
 * exits a Xen PV model relies on. Code is assembled at test time with the
 * host's GNU as/ld.
 */
import { strict as assert } from 'node:assert';
import { Cpu } from '../../engine/cpu/cpu';
import { ExitReason, PrivOp, type CpuApi } from '../../engine/cpu/api';
import { MachineMemory } from '../../engine/memory/machine-memory';
import { Cr0, CpuMode, Efer, Reg, Seg, SegAttr } from '../../engine/cpu/state';
import { assembleFlat } from '../helpers/asm-flat';
import { CODE0, CODE3, DATA0, DATA3, G32, G64, gate32, gate64, segDesc } from '../helpers/cpu-system-mock';
import {
  CODE_BASE,
  GDT_BASE,
  SEL_CODE64_USER,
  SEL_DATA_USER,
  STACK_TOP,
  createTestMachine,
} from '../../engine/cpu/testbed';

const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const CODE = 0x10000;

interface Machine {
  cpu: Cpu;
  mem: MachineMemory;
  /** Addresses from the `.long` table at the start of the code. */
  labels: number[];
}

/**
 * 2 MiB machine in 32-bit protected mode (no paging), CPL 0, flat segments,
 * with a GDT laid out as: 0x08 code32, 0x10 data, 0x1b user code32, 0x23
 * user data, 0x2b user code64, 0x30 code64, 0x38 data, 0x48 32-bit TSS
 * (ESP0 = 0x9000, SS0 = 0x10, I/O bitmap at +0x68 denying everything but
 * port 0x60). The code is linked at 0x10000 and starts at 0x10040; its
 * first bytes are a `.long` table of labels the test needs.
 */
function machine(source: string, nLabels: number): Machine {
  const mem = new MachineMemory(512);
  const cpu = new Cpu(mem);
  const s = cpu.state;
  const code = assembleFlat(source, CODE, 32);
  mem.writeBytes(CODE, code);
  const labels: number[] = [];
  for (let i = 0; i < nLabels; i++) labels.push(mem.read32(CODE + 4 * i) >>> 0);
  const gdt = (sel: number, d: number[]) => d.forEach((w, i) => mem.write32(GDT + (sel & ~7) + 4 * i, w));
  gdt(0x08, segDesc(0, 0xfffff, CODE0, G32));
  gdt(0x10, segDesc(0, 0xfffff, DATA0, G32));
  gdt(0x18, segDesc(0, 0xfffff, CODE3, G32));
  gdt(0x20, segDesc(0, 0xfffff, DATA3, G32));
  gdt(0x28, segDesc(0, 0xfffff, CODE3, G64));
  gdt(0x30, segDesc(0, 0xfffff, CODE0, G64));
  gdt(0x38, segDesc(0, 0xfffff, DATA0, G32));
  gdt(0x48, segDesc(TSS, 0x68 + 0x20, 0x89, 0));
  mem.write32(TSS + 4, 0x9000);
  mem.write32(TSS + 8, 0x10);
  mem.write16(TSS + 0x66, 0x68);
  for (let i = 0; i < 0x20; i++) mem.write8(TSS + 0x68 + i, 0xff);
  mem.write8(TSS + 0x68 + 0x0c, 0xfe); // port 0x60 allowed
  s.cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
  s.gdtrBaseLo = GDT;
  s.gdtrLimit = 0xff;
  s.idtrBaseLo = IDT;
  s.idtrLimit = 0x7ff;
  cpu.setSegmentRaw(Seg.CS, 0x08, 0, 0, 0xffffffff, 0x9b | SegAttr.DB | SegAttr.G);
  for (const seg of [Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS]) {
    cpu.setSegmentRaw(seg, 0x10, 0, 0, 0xffffffff, 0x93 | SegAttr.DB | SegAttr.G);
  }
  cpu.setSegmentRaw(Seg.LDTR, 0, 0, 0, 0, SegAttr.UNUSABLE);
  cpu.setSegmentRaw(Seg.TR, 0, 0, 0, 0, SegAttr.UNUSABLE);
  s.gprLo[Reg.RSP] = 0x8000;
  s.ripLo = CODE + 0x40;
  cpu.setRflags(2);
  cpu.stateChanged();
  return { cpu, mem, labels };
}

function idt32(m: Machine, vector: number, target: number, type: number, dpl: number, present = true): void {
  const [lo, hi] = gate32(0x08, target, type, dpl, 0, present);
  m.mem.write32(IDT + vector * 8, lo);
  m.mem.write32(IDT + vector * 8 + 4, hi);
}

function runToExit(cpu: Cpu, budget = 10000): ExitReason {
  return cpu.run(budget);
}

describe('cpu-system on the real CPU: IDT, IRET and privilege', () => {
  it('IRET to CPL3, INT 0x80 through a DPL3 trap gate and back, INT 0x81 to a DPL0 gate raises #GP(0x40a)', () => {
    const m = machine(
      `
      .code32
      .long h80, gp, user, int81
      .org 0x40
      start:
        lgdt gdtr
        ljmp $0x08, $1f
      1:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %ss
        mov $0x48, %ax
        ltr %ax
        pushl $0x23
        pushl $0x7000
        pushl $0x2
        pushl $0x1b
        pushl $user
        iret
      user:
        mov $0x23, %ax
        mov %ax, %ds
        mov $1, %eax
        int $0x80
        mov %eax, %ebx
      int81:
        int $0x81
        jmp .
      h80:
        add $0x100, %eax
        iret
      gp:
        pop %esi
        hlt
      gdtr: .word 0xff
        .long 0x1000
      `,
      4,
    );
    const [h80, gp, user, int81] = m.labels;
    idt32(m, 0x80, h80, 0xf, 3);
    idt32(m, 0x81, h80, 0xe, 0);
    idt32(m, 13, gp, 0xe, 0);
    const r = runToExit(m.cpu);
    const s = m.cpu.state;
    assert.equal(r, ExitReason.HALT, `exit ${r} at ${(s.ripLo >>> 0).toString(16)}`);
    assert.equal(s.gprLo[Reg.RBX], 0x101, 'INT 0x80 handler ran and IRET returned to CPL3');
    assert.equal(s.gprLo[Reg.RSI], (0x81 << 3) | 2, '#GP error code names the IDT entry');
    assert.equal(s.cpl, 0);
    const sp = s.gprLo[Reg.RSP] >>> 0;
    assert.equal(sp, 0x9000 - 20);
    assert.deepEqual(
      [0, 4, 12, 16].map((o) => m.mem.read32(sp + o) >>> 0),
      [int81, 0x1b, 0x7000, 0x23],
      'fault frame: EIP of the INT, CS, ESP, SS',
    );
    assert.ok(user > CODE);
    assert.equal((m.mem.read32(GDT + 0x4c) >>> 8) & 0xf, 0xb, 'LTR marked the TSS busy');
    assert.equal((m.mem.read32(GDT + 0x24) >>> 8) & 1, 1, 'DS load set the Accessed bit');
  });

  it('a fault whose delivery fails twice escalates to #DF with error code 0', () => {
    const m = machine(
      `
      .code32
      .long df
      .org 0x40
        mov $0x1000, %ax
        mov %ax, %ds
        jmp .
      df:
        pop %esi
        mov $0xdf, %edi
        hlt
      `,
      1,
    );
    idt32(m, 13, 0, 0xe, 0, false);
    idt32(m, 11, 0, 0xe, 0, false);
    idt32(m, 8, m.labels[0], 0xe, 0);
    m.cpu.state.gprLo[Reg.RSI] = -1;
    const r = runToExit(m.cpu);
    assert.equal(r, ExitReason.HALT);
    assert.equal(m.cpu.state.gprLo[Reg.RDI], 0xdf);
    assert.equal(m.cpu.state.gprLo[Reg.RSI], 0);
  });

  it('a fault during delivery of a benign exception is delivered serially (#UD, then #NP for the missing gate)', () => {
    const m = machine(
      `
      .code32
      .long np
      .org 0x40
        ud2
      np:
        pop %esi
        hlt
      `,
      1,
    );
    idt32(m, 6, 0, 0xe, 0, false);
    idt32(m, 11, m.labels[0], 0xe, 0);
    idt32(m, 8, 0, 0xe, 0, false);
    const r = runToExit(m.cpu);
    assert.equal(r, ExitReason.HALT);
    assert.equal(m.cpu.state.gprLo[Reg.RSI], (6 << 3) | 2 | 1, '#NP error code: IDT entry 6, EXT');
  });

  it('a triple fault (empty IDT) exits SHUTDOWN', () => {
    const m = machine(
      `
      .code32
      .org 0x40
        ud2
      `,
      0,
    );
    m.cpu.state.idtrLimit = 0;
    const r = runToExit(m.cpu);
    assert.equal(r, ExitReason.SHUTDOWN);
  });
});

describe('cpu-system on the real CPU: entering IA-32e mode, SYSCALL/SYSRET', () => {
  it('32-bit code enables PAE, LME and paging, jumps to 64-bit code, SYSRETs to CPL3 and SYSCALLs back', () => {
    const m = machine(
      `
      .code32
      .long after, kentry, user64
      .org 0x40
        mov %cr4, %eax
        or $0x20, %eax
        mov %eax, %cr4
        mov $0x20000, %eax
        mov %eax, %cr3
        mov $0xc0000080, %ecx
        rdmsr
        or $0x101, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80000000, %eax
        mov %eax, %cr0
        ljmp $0x30, $long
      .code64
      long:
        mov $0x38, %ax
        mov %ax, %ss
        mov $0x9000, %rsp
        mov $0xc0000081, %ecx
        xor %eax, %eax
        mov $0x00180030, %edx
        wrmsr
        mov $0xc0000082, %ecx
        mov $kentry, %eax
        xor %edx, %edx
        wrmsr
        mov $0xc0000084, %ecx
        mov $0x200, %eax
        wrmsr
        mov $user64, %ecx
        mov $0x202, %r11
        sysretq
      user64:
        mov $0x7000, %rsp
        mov $0x5555, %rbx
        syscall
      after:
        jmp .
      kentry:
        mov %rcx, %r12
        mov %r11, %r13
        hlt
      `,
      3,
    );
    const [after] = m.labels;
    // Identity map of the first 2 MiB with one user-accessible large page.
    m.mem.write32(0x20000, 0x21000 | 7);
    m.mem.write32(0x21000, 0x22000 | 7);
    m.mem.write32(0x22000, 0x87);
    const r = runToExit(m.cpu);
    const s = m.cpu.state;
    assert.equal(r, ExitReason.HALT, `exit ${r} at ${(s.ripLo >>> 0).toString(16)}`);
    assert.equal(s.efer & (Efer.LME | Efer.LMA), Efer.LME | Efer.LMA);
    assert.equal(m.cpu.mode(), CpuMode.LONG64);
    assert.equal(s.gprLo[Reg.RBX], 0x5555, 'user code ran');
    assert.equal(s.gprLo[Reg.R12] >>> 0, after, 'RCX = return RIP');
    assert.equal(s.gprLo[Reg.R13], 0x202, 'R11 = user RFLAGS');
    assert.equal(m.cpu.getRflags() & 0x200, 0, 'IF masked by IA32_FMASK');
    assert.equal(s.segSel[Seg.CS], 0x30);
    assert.equal(s.segSel[Seg.SS], 0x38);
    assert.equal(s.cpl, 0);
  });
});

describe('cpu-system on the real CPU: I/O permission and privileged exits', () => {
  it('CPL3 IN through the TSS I/O bitmap reaches ioRead; a denied port raises #GP(0)', () => {
    const m = machine(
      `
      .code32
      .long user, gp
      .org 0x40
        mov $0x48, %ax
        ltr %ax
        pushl $0x23
        pushl $0x7000
        pushl $0x2
        pushl $0x1b
        pushl $user
        iret
      user:
        in $0x60, %al
        mov %eax, %ebx
        in $0x61, %al
        jmp .
      gp:
        pop %esi
        hlt
      `,
      2,
    );
    idt32(m, 13, m.labels[1], 0xe, 0);
    const seen: number[] = [];
    const api: CpuApi = m.cpu;
    api.ioRead = (port, size) => {
      seen.push(port, size);
      return 0x5a;
    };
    const r = runToExit(m.cpu);
    assert.equal(r, ExitReason.HALT);
    assert.equal(m.cpu.state.gprLo[Reg.RBX] & 0xff, 0x5a);
    assert.deepEqual(seen, [0x60, 1]);
    assert.equal(m.cpu.state.gprLo[Reg.RSI], 0);
  });

  it('privileged instructions at CPL3 exit PRIVILEGED with the operation and operands, RIP at the instruction', () => {
    const m = machine(
      `
      .code32
      .long movcr, wrmsr_, in_, hlt_, indx
      .org 0x40
      movcr:
        mov %cr3, %esi
      wrmsr_:
        wrmsr
      in_:
        in $0x71, %al
        mov $0x70, %dx
      indx:
        in %dx, %ax
      hlt_:
        hlt
      `,
      5,
    );
    const cpu = m.cpu;
    cpu.setSegmentRaw(Seg.CS, 0x1b, 0, 0, 0xffffffff, 0xfb | SegAttr.DB | SegAttr.G);
    cpu.setSegmentRaw(Seg.SS, 0x23, 0, 0, 0xffffffff, 0xf3 | SegAttr.DB | SegAttr.G);
    cpu.stateChanged();
    cpu.interceptPrivileged = true;
    const [movcr, wrmsr, inl, hlt, indx] = m.labels;
    assert.equal(cpu.run(100), ExitReason.PRIVILEGED);
    assert.deepEqual([cpu.exitPrivOp, cpu.exitPrivCr, cpu.exitPrivReg], [PrivOp.MOV_FROM_CR, 3, Reg.RSI]);
    assert.equal(cpu.state.ripLo, movcr);
    cpu.skipInstruction();
    assert.equal(cpu.run(100), ExitReason.PRIVILEGED);
    assert.equal(cpu.exitPrivOp, PrivOp.WRMSR);
    assert.equal(cpu.state.ripLo, wrmsr);
    cpu.skipInstruction();
    assert.equal(cpu.run(100), ExitReason.PRIVILEGED);
    assert.deepEqual([cpu.exitPrivOp, cpu.exitPrivPort, cpu.exitPrivSize], [PrivOp.IN, 0x71, 1]);
    assert.equal(cpu.state.ripLo, inl);
    cpu.skipInstruction();
    assert.equal(cpu.run(100), ExitReason.PRIVILEGED);
    assert.deepEqual([cpu.exitPrivOp, cpu.exitPrivPort, cpu.exitPrivSize], [PrivOp.IN, -1, 2], 'IN from DX');
    assert.equal(cpu.state.ripLo, indx);
    cpu.skipInstruction();
    assert.equal(cpu.run(100), ExitReason.PRIVILEGED);
    assert.equal(cpu.exitPrivOp, PrivOp.HLT);
    assert.equal(cpu.state.ripLo, hlt);
  });
});

describe('cpu-system on the real CPU: call gates, SYSENTER/SYSEXIT, LAR/LSL/VERR/VERW', () => {
  it('LAR/LSL/VERR/VERW set ZF and results; a CPL3 LCALL through a 32-bit call gate copies parameters and LRET $8 returns', () => {
    const m = machine(
      `
      .code32
      .long user, gatefn, back
      .org 0x40
        mov $0x48, %ax
        ltr %ax
        mov $0x08, %ecx
        lar %ecx, %eax
        setz %bl
        lsl %ecx, %edx
        mov $0x1000, %ecx
        mov $0x77, %esi
        lar %ecx, %esi
        setz %bh
        mov $0x10, %ecx
        verw %cx
        setz %cl
        mov $0x08, %edi
        verw %di
        setz %ch
        mov %eax, 0x5000
        mov %edx, 0x5004
        mov %esi, 0x5008
        mov %ebx, 0x500c
        mov %ecx, 0x5010
        pushl $0x23
        pushl $0x7000
        pushl $0x2
        pushl $0x1b
        pushl $user
        iret
      user:
        pushl $0x11
        pushl $0x22
        lcall $0x5b, $0
      back:
        hlt
      gatefn:
        mov 8(%esp), %edi
        mov 12(%esp), %ebp
        mov %ss, %eax
        mov %esp, %edx
        lret $8
      `,
      3,
    );
    const [, gatefn, back] = m.labels;
    m.mem.write32(GDT + 0x58, gate32(0x08, gatefn, 0xc, 3, 2)[0]);
    m.mem.write32(GDT + 0x5c, gate32(0x08, gatefn, 0xc, 3, 2)[1]);
    m.cpu.interceptPrivileged = true;
    const r = runToExit(m.cpu);
    const s = m.cpu.state;
    const rd = (a: number) => m.mem.read32(a) >>> 0;
    assert.equal(rd(0x5000), 0x00cf9a00, 'LAR of the kernel code segment');
    assert.equal(rd(0x5004), 0xffffffff, 'LSL expands the page-granular limit');
    assert.equal(rd(0x5008), 0x77, 'LAR of an invalid selector leaves the destination');
    assert.equal(rd(0x500c) & 0xffff, 0x0001, 'ZF set for LAR 0x08, clear for LAR 0x1000');
    assert.equal(rd(0x5010) & 0xffff, 0x0001, 'VERW: data writable, code not');
    assert.equal(r, ExitReason.PRIVILEGED);
    assert.equal(m.cpu.exitPrivOp, PrivOp.HLT);
    assert.equal(s.ripLo, back);
    assert.equal(s.cpl, 3);
    assert.deepEqual([s.gprLo[Reg.RDI], s.gprLo[Reg.RBP]], [0x22, 0x11], 'parameters copied in order');
    assert.equal(s.gprLo[Reg.RAX] & 0xffff, 0x10, 'inner SS from the TSS');
    assert.equal(s.gprLo[Reg.RDX], 0x9000 - 24, 'inner ESP: SS, ESP, 2 params, CS, EIP');
    assert.equal(s.gprLo[Reg.RSP], 0x7000, 'LRET $8 released the parameters on the outer stack');
    assert.equal(s.segSel[Seg.SS], 0x23);
  });

  it('SYSEXIT to CPL3 and SYSENTER back in 32-bit protected mode', () => {
    const m = machine(
      `
      .code32
      .long user, kentry
      .org 0x40
        mov $0x174, %ecx
        mov $0x08, %eax
        xor %edx, %edx
        wrmsr
        mov $0x175, %ecx
        mov $0x9000, %eax
        wrmsr
        mov $0x176, %ecx
        mov $kentry, %eax
        wrmsr
        mov $0x7000, %ecx
        mov $user, %edx
        sysexit
      user:
        mov %esp, %ebx
        mov %cs, %esi
        sysenter
      kentry:
        mov %cs, %edi
        hlt
      `,
      2,
    );
    // SYSEXIT loads CS = SYSENTER_CS + 16 (0x1b) and SS = +24 (0x23).
    const r = runToExit(m.cpu);
    const s = m.cpu.state;
    assert.equal(r, ExitReason.HALT);
    assert.equal(s.gprLo[Reg.RBX], 0x7000);
    assert.equal(s.gprLo[Reg.RSI] & 0xffff, 0x1b);
    assert.equal(s.gprLo[Reg.RDI] & 0xffff, 0x08);
    assert.equal(s.gprLo[Reg.RSP], 0x9000);
    assert.equal(s.segSel[Seg.SS], 0x10);
  });
});

describe('cpu-system on the real CPU: 64-bit call gate and #PF delivery (testbed long64)', () => {
  it('CPL3 LCALL through a 64-bit call gate to CPL0 and LRETQ back', () => {
    const tm = createTestMachine({ mode: 'long64', user: true });
    const code = assembleFlat(
      `
      .code64
      .long gatefn, back
      .org 0x40
        lcall *ptr
      back:
        hlt
      gatefn:
        mov %ss, %eax
        mov %rsp, %rdx
        mov 8(%rsp), %rsi
        mov 16(%rsp), %rdi
        mov 24(%rsp), %rbp
        lretq
      ptr:
        .long 0
        .word 0x53
      `,
      CODE_BASE,
      64,
    );
    tm.load(CODE_BASE, code);
    const gatefn = tm.mem.read32(CODE_BASE);
    const back = tm.mem.read32(CODE_BASE + 4);
    gate64(0x08 | 0x10, gatefn, 0, 0xc, 3).forEach((w, i) => tm.mem.write32(GDT_BASE + 0x50 + 4 * i, w));
    tm.cpu.state.gdtrLimit = 0x5f;
    tm.start(CODE_BASE + 0x40, 0x70000);
    tm.cpu.interceptPrivileged = true;
    const r = tm.cpu.run(1000);
    const s = tm.cpu.state;
    assert.equal(
      r,
      ExitReason.PRIVILEGED,
      `exit ${r} at ${(s.ripLo >>> 0).toString(16)} ${tm.cpu.exitVector}`,
    );
    assert.equal(tm.cpu.exitPrivOp, PrivOp.HLT);
    assert.equal(s.ripLo >>> 0, back);
    assert.equal(s.cpl, 3);
    assert.equal(s.gprLo[Reg.RAX] & 0xffff, 0, 'null SS inside the gate');
    assert.equal(s.gprLo[Reg.RDX] >>> 0, STACK_TOP - 0x4000 - 32, 'RSP0 from the TSS, four 8-byte slots');
    assert.deepEqual(
      [s.gprLo[Reg.RSI], s.gprLo[Reg.RDI], s.gprLo[Reg.RBP]],
      [SEL_CODE64_USER, 0x70000, SEL_DATA_USER],
      'pushed CS, RSP, SS of the caller',
    );
    assert.equal(s.gprLo[Reg.RSP], 0x70000);
    assert.equal(s.segSel[Seg.SS], SEL_DATA_USER);
  });

  it('#PF from CPL3 is delivered through a 64-bit IDT gate with the error code and CR2', () => {
    const tm = createTestMachine({ mode: 'long64', user: true });
    const code = assembleFlat(
      `
      .code64
      .long pf, fault
      .org 0x40
      fault:
        mov 0x400000, %rax
        jmp .
      pf:
        pop %rsi
        mov %cr2, %rdi
        mov (%rsp), %rbx
        hlt
      `,
      CODE_BASE,
      64,
    );
    tm.load(CODE_BASE, code);
    tm.setIdtGate(14, tm.mem.read32(CODE_BASE));
    tm.mapPage(0x400000, 0x400000, 0);
    tm.cpu.flushTlb(true);
    tm.start(CODE_BASE + 0x40, 0x70000);
    const r = tm.cpu.run(1000);
    const s = tm.cpu.state;
    assert.equal(r, ExitReason.HALT, `exit ${r} vector ${tm.cpu.exitVector}`);
    assert.equal(s.gprLo[Reg.RSI], 4, 'error code: user read of a not-present page');
    assert.equal(s.gprLo[Reg.RDI], 0x400000);
    assert.equal(s.gprLo[Reg.RBX] >>> 0, tm.mem.read32(CODE_BASE + 4), 'saved RIP = faulting instruction');
  });
});

describe('cpu-system on the real CPU: compatibility mode', () => {
  it('IRETQ to 32-bit user code in compatibility mode; INT 0x80 from there lands in the 64-bit kernel with a zero-extended frame', () => {
    const tm = createTestMachine({ mode: 'long64' });
    const code = assembleFlat(
      `
      .code64
      .long user32, h80
      .org 0x40
        pushq $0x2b
        pushq $0x60000
        pushq $0x2
        pushq $0x23
        pushq $user32
        iretq
      .code32
      user32:
        mov $0x1234, %eax
        int $0x80
        jmp .
      .code64
      h80:
        mov %rsp, %rbx
        hlt
      `,
      CODE_BASE,
      64,
    );
    tm.load(CODE_BASE, code);
    const [user32, h80] = [tm.mem.read32(CODE_BASE), tm.mem.read32(CODE_BASE + 4)];
    tm.setIdtGate(0x80, h80, 3);
    tm.start(CODE_BASE + 0x40, 0x70000);
    const r = tm.cpu.run(1000);
    const s = tm.cpu.state;
    assert.equal(r, ExitReason.HALT, `exit ${r} vector ${tm.cpu.exitVector}`);
    assert.equal(s.gprLo[Reg.RAX], 0x1234, 'compat user code ran');
    const sp = s.gprLo[Reg.RBX] >>> 0;
    assert.equal(sp, STACK_TOP - 0x4000 - 40, 'RSP0 from the 64-bit TSS, five 8-byte slots');
    const q = (o: number) => [tm.mem.read32(sp + o) >>> 0, tm.mem.read32(sp + o + 4) >>> 0];
    assert.deepEqual(q(0), [user32 + 7, 0], 'return RIP after INT 0x80');
    assert.deepEqual(q(8), [0x23, 0]);
    assert.deepEqual(q(24), [0x60000, 0]);
    assert.deepEqual(q(32), [0x2b, 0]);
    assert.equal(s.segSel[Seg.CS], 0x18);
    assert.equal(tm.cpu.mode(), CpuMode.LONG64);
  });
});
