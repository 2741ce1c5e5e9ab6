/*
 * thfc-vm KVM probe guest: one 512-byte boot sector, the source of the bytes in
 * kvm-probe-guest.ts (test/kvm-probe-guest.test.ts assembles this file and
 * compares). Build:
 *   as --64 -o p.o kvm-probe-guest.S && ld -m elf_x86_64 -Ttext 0x7c00 --oformat binary -e _start -o p.bin p.o
 *
 * SeaBIOS loads it at 0x7c00 in real mode. It switches to long mode and then
 * does what a Linux kernel does early and what a broken KVM (nested, or the
 * kvm_pvm module, which runs the guest kernel de-privileged and emulates what
 * traps) fails at: take an exception through a 64-bit IDT (int3), lock
 * cmpxchg16b, xsetbv/xsave/xrstor. Progress goes to COM1 word by word, so a
 * failure says how far it got; " OK" means it all ran. It then writes to
 * isa-debug-exit, which ends qemu.
 */
        .code16
        .globl _start
_start:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %sp
        mov     $msg_start, %si
        call    puts16
        /* identity-map the first 2 MiB: PML4 0x1000, PDPT 0x2000, PD 0x3000 */
        mov     $0x1000, %di
        mov     $0x1800, %cx
        xor     %ax, %ax
        rep stosw
        movl    $0x2003, 0x1000
        movl    $0x3003, 0x2000
        movl    $0x0083, 0x3000
        lgdtl   gdtr
        mov     %cr4, %eax
        or      $0x220, %eax            /* PAE | OSFXSR */
        mov     %eax, %cr4
        mov     $0x1000, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000001, %eax       /* PG | PE */
        mov     %eax, %cr0
        ljmpl   $0x08, $long_mode

puts16:
        mov     $0x3f8, %dx
1:      lodsb
        test    %al, %al
        jz      2f
        out     %al, %dx
        jmp     1b
2:      ret

        .code64
long_mode:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %esp
        mov     $msg_long, %esi
        call    puts64
        lidt    idtr
        int3                            /* exception delivery in long mode */
        mov     $msg_int3, %esi
        call    puts64
        mov     $1, %eax
        cpuid
        mov     %ecx, %ebp              /* keep feature bits */
        bt      $13, %ebp               /* CX16 */
        jnc     1f
        xor     %eax, %eax
        xor     %edx, %edx
        mov     $1, %ebx
        xor     %ecx, %ecx
        lock cmpxchg16b cx16_slot
        mov     $msg_cx16, %esi
        call    puts64
1:      bt      $26, %ebp               /* XSAVE */
        jnc     2f
        mov     %cr4, %rax
        or      $0x40000, %eax          /* OSXSAVE */
        mov     %rax, %cr4
        xor     %ecx, %ecx
        mov     $3, %eax                /* XCR0 = x87 | SSE */
        xor     %edx, %edx
        xsetbv
        mov     $3, %eax
        xor     %edx, %edx
        xsave   0x5000
        xrstor  0x5000
        mov     $msg_xsave, %esi
        call    puts64
2:      mov     $msg_ok, %esi
        call    puts64
        mov     $0xf4, %dx              /* isa-debug-exit: qemu exits with status 1 */
        xor     %eax, %eax
        out     %eax, %dx
3:      hlt
        jmp     3b

puts64:
        mov     $0x3f8, %dx
1:      lodsb
        test    %al, %al
        jz      2f
        out     %al, %dx
        jmp     1b
2:      ret

int3_handler:
        iretq

        .balign 16
cx16_slot:
        .quad   0, 0
gdt:
        .quad   0
        .quad   0x00af9a000000ffff      /* 0x08: 64-bit code */
        .quad   0x00cf92000000ffff      /* 0x10: data */
gdtr:
        .word   gdtr - gdt - 1
        .long   gdt
idt:
        .fill   3 * 16, 1, 0
        .word   int3_handler            /* vector 3: offset 15..0 */
        .word   0x08                    /* selector */
        .byte   0, 0x8e                 /* IST 0; present interrupt gate, DPL 0 */
        .word   0                       /* offset 31..16 (code sits below 64 KiB) */
        .long   0, 0                    /* offset 63..32, reserved */
idtr:
        .word   idtr - idt - 1
        .quad   idt
msg_start:      .asciz "thfc-kvm-probe: real"
msg_long:       .asciz " long"
msg_int3:       .asciz " int3"
msg_cx16:       .asciz " cx16"
msg_xsave:      .asciz " xsave"
msg_ok:         .asciz " OK\n"

        .org    510
        .word   0xaa55
