// hwgen simulated board: a Verilated board-level design (link + core, one clock domain) driven by
// a host model in C++ (a UART 8N1 line or an SPI mode-0 controller), controlled by Python over
// stdin/stdout with a line protocol. Built by hwgen/boardsim/build.py, which writes hw_ports.h:
// HW_TOP (the Verilated class), HW_CLK, HW_RST and either HW_UART with HW_RX / HW_TX or HW_SPI
// with HW_SCLK / HW_CS_N / HW_MOSI / HW_MISO (the Verilated port names).
//
// Usage: board uart DIVISOR | board spi HALF_PERIOD JITTER SEED BURST
//   DIVISOR: core clock cycles per UART bit. HALF_PERIOD: core cycles per SCLK half period, plus
//   0..JITTER extra cycles drawn per half period from a generator seeded with SEED. BURST: filler
//   bytes per chip-select transfer while the host waits for a reply.
//
// Time runs only inside a command (deterministic: no wall clock anywhere). One cycle = one
// rising clock edge; the host's pins are set before the edge, the device's pins read after it.
// The design is held in reset for 2 cycles at start (not counted). Commands, one a line:
//   w HEX              queue bytes for the device (they go out as time runs)          -> "ok"
//   r NEED MAXCYC ROOM run until the receive buffer holds NEED bytes or MAXCYC cycles passed
//                      (SPI: NEED > 0 clocks filler 0x00 bytes when nothing is queued, and
//                      the run ends between transfers: a whole burst is received)      -> reply
//   f MAXCYC ROOM      run until every queued byte is on the line and the line is idle  -> reply
//   q                  quit
// ROOM: how many more bytes the host's receive buffer holds; a received byte beyond it is counted
// as an overflow (lost, and reported) instead of stored.
// Reply: "d CYCLES OVERFLOWS FRAMING PENDING HEX": total cycles, total overflowed bytes, total
// device-to-host framing errors (UART stop bit 0), host bytes not yet fully sent (+1 while a byte
// or an SPI transfer is under way), the received bytes ("-" for none; all handed over).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "hw_ports.h"

typedef unsigned long long u64;

static std::unique_ptr<VerilatedContext> ctx;
static std::unique_ptr<HW_TOP> top;
static u64 cycles = 0, overflows = 0, framing = 0, room = 0;
static std::deque<uint8_t> txq;   // host -> device, not yet started
static std::vector<uint8_t> rxb;  // device -> host, not yet handed over

static void tick() {
    top->HW_CLK = 0;
    top->eval();
    top->HW_CLK = 1;
    top->eval();
    ++cycles;
}

static void receive(uint8_t b) {
    if (rxb.size() < room)
        rxb.push_back(b);
    else
        ++overflows;
}

#if defined(HW_UART)
static long divisor = 4;
// driver: bit-bangs 8N1 on rx; pos 0 = start bit, 1..8 data (LSB first), 9 stop, 10 idle
static int drv_pos = 10;
static long drv_left = 0;
static unsigned drv_frame = 0;
// monitor: decodes tx, sampling each bit in its middle; bit -1 = start check, 0..7 data, 8 stop
enum { M_IDLE, M_BITS, M_WAIT_HIGH } mon = M_IDLE;
static int mon_bit = 0;
static long mon_left = 0;
static unsigned mon_value = 0;

static void reset_pins() { top->HW_RX = 1; }

static bool busy() { return drv_pos < 10 || !txq.empty(); }

static bool between_transfers() { return true; }

static void step(bool) {
    if (drv_pos == 10 && !txq.empty()) {
        drv_frame = (1u << 9) | ((unsigned)txq.front() << 1);  // stop 1, data, start 0
        txq.pop_front();
        drv_pos = 0;
        drv_left = divisor;
    }
    top->HW_RX = drv_pos < 10 ? (drv_frame >> drv_pos) & 1 : 1;
    tick();
    if (drv_pos < 10 && --drv_left == 0) {
        ++drv_pos;
        drv_left = divisor;
    }
    int tx = top->HW_TX & 1;
    switch (mon) {
    case M_IDLE:
        if (!tx) {
            mon = M_BITS;
            mon_bit = -1;
            mon_left = divisor / 2;
            mon_value = 0;
        }
        break;
    case M_BITS:
        if (--mon_left > 0) break;
        if (mon_bit == -1) {
            if (tx) { mon = M_IDLE; break; }  // a glitch, not a start bit
        } else if (mon_bit < 8) {
            mon_value |= (unsigned)tx << mon_bit;
        } else {
            if (tx) {
                receive((uint8_t)mon_value);
                mon = M_IDLE;
            } else {
                ++framing;
                mon = M_WAIT_HIGH;
            }
            break;
        }
        ++mon_bit;
        mon_left = divisor;
        break;
    case M_WAIT_HIGH:
        if (tx) mon = M_IDLE;
        break;
    }
}

static bool configure(int argc, char** argv) {
    if (argc != 3 || std::string(argv[1]) != "uart") return false;
    divisor = std::atol(argv[2]);
    return divisor >= 2;
}
#elif defined(HW_SPI)
static long half = 4, jitter = 0, burst = 16;
static u64 rng = 1;
// controller: IDLE (cs_n high) -> SETUP (cs_n low, first MOSI bit) -> HIGH / LOW per bit
// -> HOLD (after the last falling SCLK edge) -> GAP (cs_n high again) -> IDLE; every phase lasts
// one (jittered) half period, GAP two (cs_n high for at least one SCLK period, >= 4 cycles at the
// SPI target's minimum half period of 2: hwgen.uart.spi.SpiPhy's contract)
enum { S_IDLE, S_SETUP, S_HIGH, S_LOW, S_HOLD, S_GAP } spi = S_IDLE;
static long spi_left = 0;
static std::vector<uint8_t> out;  // the bytes of the current transfer
static std::size_t out_i = 0;
static int bit = 0;
static unsigned in_byte = 0;

static long next_half() {
    if (jitter <= 0) return half;
    rng ^= rng << 13;  // xorshift64
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return half + (long)(rng % (u64)(jitter + 1));
}

static void reset_pins() {
    top->HW_CS_N = 1;
    top->HW_SCLK = 0;
    top->HW_MOSI = 0;
}

static bool busy() { return spi != S_IDLE || !txq.empty(); }

// a read returns only between transfers, as a controller's blocking transfer call does
static bool between_transfers() { return spi == S_IDLE; }

static void mosi_bit() { top->HW_MOSI = (out[out_i] >> (7 - bit)) & 1; }

static void step(bool fill) {
    if (spi == S_IDLE && (!txq.empty() || fill)) {
        out.assign(txq.begin(), txq.end());
        txq.clear();
        if (out.empty()) out.assign((std::size_t)burst, 0);
        out_i = 0;
        bit = 0;
        in_byte = 0;
        top->HW_CS_N = 0;
        mosi_bit();
        spi = S_SETUP;
        spi_left = next_half();
    }
    tick();
    if (spi == S_IDLE || --spi_left > 0) return;
    // a phase ended after this edge: set the pins the next edge sees
    switch (spi) {
    case S_SETUP:
    case S_LOW:
        in_byte = (in_byte << 1) | (top->HW_MISO & 1);  // sampled at the rising SCLK edge
        top->HW_SCLK = 1;
        spi = S_HIGH;
        break;
    case S_HIGH:
        top->HW_SCLK = 0;
        if (++bit == 8) {
            receive((uint8_t)in_byte);
            in_byte = 0;
            bit = 0;
            if (++out_i == out.size()) {
                spi = S_HOLD;
                break;
            }
        }
        mosi_bit();
        spi = S_LOW;
        break;
    case S_HOLD:
        top->HW_CS_N = 1;
        top->HW_MOSI = 0;
        spi = S_GAP;
        spi_left = next_half() + next_half();
        return;
    case S_GAP:
        spi = S_IDLE;
        return;
    default:
        break;
    }
    spi_left = next_half();
}

static bool configure(int argc, char** argv) {
    if (argc != 6 || std::string(argv[1]) != "spi") return false;
    half = std::atol(argv[2]);
    jitter = std::atol(argv[3]);
    rng = std::strtoull(argv[4], nullptr, 10) * 0x9E3779B97F4A7C15ull + 1;
    burst = std::atol(argv[5]);
    return half >= 1 && jitter >= 0 && burst >= 1;
}
#else
#error "hw_ports.h defines neither HW_UART nor HW_SPI"
#endif

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void reply() {
    static const char* digits = "0123456789abcdef";
    std::string s = "d " + std::to_string(cycles) + " " + std::to_string(overflows) + " " +
                    std::to_string(framing) + " " +
                    std::to_string(txq.size() + (busy() && txq.empty() ? 1 : 0)) + " ";
    if (rxb.empty()) s += "-";
    for (uint8_t b : rxb) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    rxb.clear();
    s += "\n";
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    if (!configure(argc, argv)) {
        std::fprintf(stderr,
                     "usage: %s uart DIVISOR | %s spi HALF_PERIOD JITTER SEED BURST "
                     "(this build is for the other link, or a value is out of range)\n",
                     argv[0], argv[0]);
        return 2;
    }
    std::ios::sync_with_stdio(false);
    ctx = std::make_unique<VerilatedContext>();
    top = std::make_unique<HW_TOP>(ctx.get());
    reset_pins();
    top->HW_RST = 1;
    tick();
    tick();
    top->HW_RST = 0;
    cycles = 0;
    std::printf("ready\n");
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        char cmd = line[0];
        if (cmd == 'q') break;
        if (cmd == 'w') {
            for (std::size_t i = 2; i + 1 < line.size(); i += 2) {
                int hi = hexval(line[i]), lo = hexval(line[i + 1]);
                if (hi < 0 || lo < 0) {
                    std::fprintf(stderr, "bad hex in: %s\n", line.c_str());
                    return 2;
                }
                txq.push_back((uint8_t)(hi << 4 | lo));
            }
            std::printf("ok\n");
            std::fflush(stdout);
        } else if (cmd == 'r' || cmd == 'f') {
            u64 need = 0, maxcyc = 0;
            const char* p = line.c_str() + 1;
            char* end;
            if (cmd == 'r') {
                need = std::strtoull(p, &end, 10);
                p = end;
            }
            maxcyc = std::strtoull(p, &end, 10);
            p = end;
            room = std::strtoull(p, &end, 10);
            u64 stop = cycles + maxcyc;
            if (cmd == 'r') {
                while (cycles < stop && (need == 0 || rxb.size() < need || !between_transfers()))
                    step(need > 0);
            } else {
                while (cycles < stop && busy()) step(false);
            }
            reply();
        } else {
            std::fprintf(stderr, "unknown command: %s\n", line.c_str());
            return 2;
        }
    }
    top->final();
    return 0;
}
