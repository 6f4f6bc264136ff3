/*
 * pvscope demo guest: a tiny 64-bit Xen PV kernel built from source (GNU as
 * + ld) for machines where Debian's PV GRUB cannot be fetched. It finds its
 * console ring through start_info and the read-only M2P, prints a banner,
 * echoes what is typed, and powers the domain off on 'q'.
 *
 * Xen ABI used (shared/design facts): start_info.console.domU.mfn at +0x48,
 * .evtchn at +0x50; M2P at 0xffff800000000000 (8-byte entries); console ring
 * in[] at 0, out[] at 0x400, in_cons/in_prod/out_cons/out_prod at
 * 0xc00/0xc04/0xc08/0xc0c; hypercalls by `syscall` with the number in
 * %eax and arguments in %rdi, %rsi: sched_op (29) yield 0 / shutdown 2,
 * event_channel_op (32) send 4.
 */
        .text
        .globl _start
_start:
        lea     stack_top(%rip), %rsp
        mov     0x48(%rsi), %rax            /* console ring mfn */
        mov     0x50(%rsi), %r13d           /* console event channel */
        mov     $0xffff800000000000, %rcx
        mov     (%rcx,%rax,8), %r12         /* its pfn, from the M2P */
        shl     $12, %r12                   /* VIRT_BASE 0: va = pfn << 12 */
        lea     banner(%rip), %rbx
        call    puts
poll:
        mov     0xc00(%r12), %eax           /* in_cons */
        cmp     0xc04(%r12), %eax           /* in_prod */
        jne     key
        mov     $29, %eax                   /* sched_op(SCHEDOP_yield) */
        xor     %edi, %edi
        xor     %esi, %esi
        syscall
        jmp     poll
key:
        mov     %eax, %ecx
        and     $1023, %ecx
        movzbl  (%r12,%rcx), %edx
        inc     %eax
        mov     %eax, 0xc00(%r12)
        cmp     $'q', %dl
        je      poweroff
        cmp     $'\r', %dl
        jne     1f
        mov     $'\n', %dl
1:      call    putc
        call    notify
        jmp     poll
poweroff:
        lea     bye(%rip), %rbx
        call    puts
        movl    $0, reason(%rip)            /* SHUTDOWN_poweroff */
        mov     $2, %edi                    /* SCHEDOP_shutdown */
        lea     reason(%rip), %rsi
        mov     $29, %eax
        syscall
        jmp     poweroff

/* puts: NUL-terminated string at %rbx to the ring, then notify. */
puts:
        movzbl  (%rbx), %edx
        test    %dl, %dl
        jz      notify
        call    putc
        inc     %rbx
        jmp     puts

/* putc: %dl into out[], waiting (yield) while the ring is full. */
putc:
        mov     0xc0c(%r12), %eax           /* out_prod */
        mov     %eax, %ecx
        sub     0xc08(%r12), %ecx           /* - out_cons */
        cmp     $2048, %ecx
        jb      2f
        push    %rdx
        call    notify
        mov     $29, %eax
        xor     %edi, %edi
        xor     %esi, %esi
        syscall
        pop     %rdx
        jmp     putc
2:      mov     %eax, %ecx
        and     $2047, %ecx
        mov     %dl, 0x400(%r12,%rcx)
        inc     %eax
        mov     %eax, 0xc0c(%r12)
        ret

/* notify: event_channel_op(EVTCHNOP_send, &port). */
notify:
        mov     %r13d, port(%rip)
        mov     $4, %edi
        lea     port(%rip), %rsi
        mov     $32, %eax
        syscall
        ret

        .data
banner: .asciz  "pvscope demo guest (64-bit Xen PV): type to echo, q powers off\r\n"
bye:    .asciz  "\r\npowering off\r\n"
        .balign 8
reason: .long   0
port:   .long   0

        .bss
        .balign 4096
stack:  .fill   16384, 1, 0
stack_top:

/* Xen ELF notes: GUEST_OS, LOADER, XEN_VERSION, VIRT_BASE 0, ENTRY. */
        .section .note.Xen, "a", @note
        .balign 4
        .long 4, 13, 6
        .asciz "Xen"
        .asciz "pvscope-demo"
        .balign 4
        .long 4, 8, 8
        .asciz "Xen"
        .asciz "generic"
        .balign 4
        .long 4, 8, 5
        .asciz "Xen"
        .asciz "xen-3.0"
        .balign 4
        .long 4, 8, 3
        .asciz "Xen"
        .quad 0
        .long 4, 8, 1
        .asciz "Xen"
        .quad _start
