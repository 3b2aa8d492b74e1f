// SPDX-License-Identifier: GPL-2.0
//
// hvemu: a 16550 UART, transmit only (x86_64: port 0x3f8, IRQ 4; arm64:
// MMIO "ns16550a", one byte per register).  The zone's console; its
// registers are the zone's Vm's (vm.uart), one UART per zone.
//
// The THRE interrupt follows the chip: pending after a THR write or after
// IER enables it, cleared by reading IIR.  The loopback bits make the
// driver's autoconfig probe find a 16550A.
#include "hvemu.h"

namespace hvemu {

static void uart_update(Vm &vm, UartLine line) {
    UartRegs &uart = vm.uart;
    bool level = (uart.ier & 0x02) && uart.thre;
    if (level == uart.line)
        return;
    uart.line = level;
    line(vm, level);
}

uint8_t uart_in(Vm &vm, unsigned reg, UartLine line) {
    UartRegs &uart = vm.uart;
    bool dlab = uart.lcr & 0x80;
    switch (reg) {
    case 0:
        return dlab ? uart.dll : 0;
    case 1:
        return dlab ? uart.dlm : uart.ier;
    case 2: {
        uint8_t fifo = (uart.fcr & 1) ? 0xc0 : 0;
        if ((uart.ier & 0x02) && uart.thre) {
            uart.thre = false;
            uart_update(vm, line);
            return fifo | 0x02;
        }
        return fifo | 0x01;
    }
    case 3:
        return uart.lcr;
    case 4:
        return uart.mcr;
    case 5:
        return 0x60; // THR empty, transmitter empty
    case 6:
        if (uart.mcr & 0x10) // loopback: OUT2->DCD, OUT1->RI, DTR->DSR, RTS->CTS
            return (uint8_t)(((uart.mcr & 0x0c) << 4) | ((uart.mcr & 0x01) << 5) |
                             ((uart.mcr & 0x02) << 3));
        return 0xb0; // DCD, DSR, CTS
    default:
        return uart.scr;
    }
}

void uart_out(Vm &vm, unsigned reg, uint8_t v, UartLine line) {
    UartRegs &uart = vm.uart;
    bool dlab = uart.lcr & 0x80;
    switch (reg) {
    case 0:
        if (dlab) {
            uart.dll = v;
        } else {
            if (!(uart.mcr & 0x10) && vm.console)
                vm.console->put(v);
            uart.thre = true;
        }
        break;
    case 1:
        if (dlab) {
            uart.dlm = v;
        } else {
            if ((v & 0x02) && !(uart.ier & 0x02))
                uart.thre = true;
            uart.ier = v & 0x0f;
        }
        break;
    case 2:
        uart.fcr = v;
        break;
    case 3:
        uart.lcr = v;
        break;
    case 4:
        uart.mcr = v & 0x1f;
        break;
    case 7:
        uart.scr = v;
        break;
    default:
        break;
    }
    uart_update(vm, line);
}

} // namespace hvemu
