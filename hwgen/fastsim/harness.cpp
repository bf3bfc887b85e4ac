// hwgen fast simulation harness: drives a generated accelerator (Verilated C++ model) from files,
// with no per-cycle Python. Built by hwgen/fastsim/__init__.py, which writes hw_ports.h next to
// it: the Verilated top's header and, as macros, its class and the port names from
// manifest.json: HW_TOP (e.g. Vhwgen_top), HW_CLK, HW_RST, HW_I_VALID, HW_I_READY, HW_I_PAYLOAD,
// HW_O_VALID, HW_O_READY, HW_O_PAYLOAD.
//
// A delta core's hw_ports.h also defines HW_COUNT_COLUMNS and HW_COUNT_CYCLES (its debug
// counters, manifest delta.counters): then the harness records them at every output transfer.
//
// Usage: sim PLAN STALLS RESULT [CYCLES|- [COUNTERS]]
//   PLAN: one operation a line, the same list sim/bench_accel.py runs (built by hwgen.cosim):
//     x IDLE PAYLOAD_HEX EXPECTED_HEX   one input transfer after IDLE idle cycles, and the output
//                                       word the golden model expects for it
//     r CYCLES                          wait until every output is in, then pulse reset
//     a CYCLES                          pulse reset right after the last input (work in flight)
//     t TIMEOUT                         cycles without progress before giving up (first line)
//   STALLS: for the k-th output, the cycles ready is held low before it (whitespace separated;
//     the same draws as the cocotb bench's random.Random(seed)).
//   RESULT: written at the end: "status ok|mismatch|extra|timeout", "cycles N", "inputs N",
//     "outputs N", and for a mismatch "mismatch INPUT_INDEX GOT_HEX EXPECTED_HEX" (the index of
//     the input, in plan order, whose output differs).
//   CYCLES (optional, "-": none): the edge of every input and output transfer ("in C" /
//     "out C" lines).
//   COUNTERS (optional, delta cores): per output transfer "EPOCH COLUMNS CYCLES", the reset
//     epoch (resets completed before it) and the two counters as the cocotb bench reads them
//     (in the cycle of the transfer, before its edge).
//
// Cycle semantics (those of the cocotb bench): reset is high for edges 0-2, edge 3 is idle, the
// first operation starts after edge 3; an input's idle cycles count from the previous event's
// edge; a transfer is an edge where valid, ready and not reset. Outputs are checked in order
// against the expected words of the inputs accepted since the last reset; a reset with work in
// flight ('a') drops the rest of that epoch's expected outputs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "verilated.h"
#include "hw_ports.h"

typedef std::vector<uint32_t> Word;

static Word parse_hex(const std::string& s) {
    Word w;
    int n = (int)s.size();
    for (int end = n; end > 0; end -= 8) {
        int start = end - 8 < 0 ? 0 : end - 8;
        w.push_back((uint32_t)std::strtoul(s.substr(start, end - start).c_str(), nullptr, 16));
    }
    if (w.empty()) w.push_back(0);
    return w;
}

static std::string to_hex(const Word& w) {
    std::string s;
    char buf[16];
    bool lead = true;
    for (int i = (int)w.size() - 1; i >= 0; --i) {
        if (lead) {
            if (w[i] == 0 && i > 0) continue;
            std::snprintf(buf, sizeof buf, "%x", w[i]);
            lead = false;
        } else {
            std::snprintf(buf, sizeof buf, "%08x", w[i]);
        }
        s += buf;
    }
    return s;
}

// Port access for every Verilator port type: CData/SData/IData/QData or VlWide<N>.
template <typename T>
static void set_port(T& port, const Word& w) {
    uint64_t v = w[0] | (w.size() > 1 ? (uint64_t)w[1] << 32 : 0);
    port = (T)v;
}
template <std::size_t N>
static void set_port(VlWide<N>& port, const Word& w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < w.size() ? w[i] : 0;
}
template <typename T>
static Word get_port(const T& port) {
    uint64_t v = (uint64_t)port;
    return Word{(uint32_t)v, (uint32_t)(v >> 32)};
}
template <std::size_t N>
static Word get_port(const VlWide<N>& port) {
    Word w(N);
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
    return w;
}

static bool same(const Word& a, const Word& b) {
    std::size_t n = a.size() > b.size() ? a.size() : b.size();
    for (std::size_t i = 0; i < n; ++i) {
        uint32_t x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
        if (x != y) return false;
    }
    return true;
}

struct Op {
    char kind;  // 'x', 'r', 'a'
    long arg;   // idle cycles or reset cycles
    Word payload, expected;
};

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PLAN STALLS RESULT [CYCLES]\n", argv[0]);
        return 2;
    }
    std::vector<Op> ops;
    long timeout = 100000;
    {
        std::ifstream f(argv[1]);
        if (!f) {
            std::fprintf(stderr, "cannot read %s\n", argv[1]);
            return 2;
        }
        std::string kind;
        while (f >> kind) {
            Op op{kind[0], 0, {}, {}};
            f >> op.arg;
            if (op.kind == 't') {
                timeout = op.arg;
                continue;
            }
            if (op.kind == 'x') {
                std::string p, e;
                f >> p >> e;
                op.payload = parse_hex(p);
                op.expected = parse_hex(e);
            }
            ops.push_back(op);
        }
    }
    std::vector<long> stalls;
    {
        std::ifstream f(argv[2]);
        long v;
        while (f >> v) stalls.push_back(v);
    }
    FILE* cyc = argc > 4 && std::strcmp(argv[4], "-") != 0 ? std::fopen(argv[4], "w") : nullptr;
    FILE* cnt = argc > 5 ? std::fopen(argv[5], "w") : nullptr;
    long epoch = 0;

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<HW_TOP>(ctx.get());

    // driver (input side) and monitor (output side) states
    enum { NEXT, IDLE, VALID, WAIT_OUT, RESET, FINAL, DONE } drv = NEXT;
    long drv_count = 0, reset_len = 0;
    std::size_t pc = 0;
    bool mon_ready = false;
    long mon_count = 0;
    std::size_t stall_i = 0;
    std::deque<std::size_t> expect;  // plan indices of inputs whose output is due (this epoch)
    long fed = 0, got = 0, inputs = 0, outputs = 0, last_progress = 0, end_cycle = 0;
    std::string status = "ok", detail;

    auto next_stall = [&]() -> long { return stall_i < stalls.size() ? stalls[stall_i++] : 0; };

    long c = 0;
    // edges 0-2: reset; edge 3: idle
    for (; c < 4; ++c) {
        top->HW_RST = c < 3;
        top->HW_I_VALID = 0;
        top->HW_O_READY = 0;
        top->HW_CLK = 0;
        top->eval();
        top->HW_CLK = 1;
        top->eval();
    }
    c = 3;
    {
        long n = next_stall();
        mon_ready = n == 0;
        mon_count = n;
    }
    end_cycle = 3;
    last_progress = 3;
    while (drv != DONE) {
        // the driver takes its next operation at the current time point (edge c)
        while (drv == NEXT) {
            if (pc >= ops.size()) {
                drv = got >= fed ? DONE : FINAL;
                if (drv == DONE) end_cycle = c;
                break;
            }
            const Op& op = ops[pc];
            if (op.kind == 'x') {
                drv = op.arg > 0 ? IDLE : VALID;
                drv_count = op.arg;
                set_port(top->HW_I_PAYLOAD, op.payload);
            } else if (op.kind == 'a') {
                drv = RESET;
                drv_count = op.arg;
                ++pc;
            } else {  // 'r'
                reset_len = op.arg;
                drv = got >= fed ? RESET : WAIT_OUT;
                drv_count = op.arg;
                ++pc;
            }
        }
        if (drv == DONE) break;
        ++c;  // the next edge
        bool rst = drv == RESET;
        top->HW_RST = rst;
        top->HW_I_VALID = drv == VALID;
        top->HW_O_READY = mon_ready;
        top->HW_CLK = 0;
        top->eval();
        bool accept = drv == VALID && top->HW_I_READY && !rst;
        bool deliver = mon_ready && top->HW_O_VALID && !rst;
        Word out;
        if (deliver) out = get_port(top->HW_O_PAYLOAD);
#ifdef HW_COUNT_COLUMNS
        if (deliver && cnt)
            std::fprintf(cnt, "%ld %u %u\n", epoch, get_port(top->HW_COUNT_COLUMNS)[0],
                         get_port(top->HW_COUNT_CYCLES)[0]);
#endif
        top->HW_CLK = 1;
        top->eval();

        // monitor: the output transfer of this edge
        if (deliver) {
            ++outputs;
            ++got;
            last_progress = c;
            if (cyc) std::fprintf(cyc, "out %ld\n", c);
            if (expect.empty()) {
                status = "extra";
                detail = "extra " + std::to_string(outputs - 1) + " " + to_hex(out);
                end_cycle = c;
                break;
            }
            std::size_t idx = expect.front();
            expect.pop_front();
            if (!same(out, ops[idx].expected)) {
                status = "mismatch";
                std::size_t n = 0;  // the input's index among the plan's inputs
                for (std::size_t i = 0; i < idx; ++i) n += ops[i].kind == 'x';
                detail = "mismatch " + std::to_string(n) + " " + to_hex(out) + " " +
                         to_hex(ops[idx].expected);
                end_cycle = c;
                break;
            }
            long n = next_stall();
            mon_ready = n == 0;
            mon_count = n;
        } else if (!mon_ready) {
            if (--mon_count <= 0) mon_ready = true;
        }
        // driver
        if (drv == IDLE) {
            if (--drv_count <= 0) drv = VALID;
        } else if (drv == VALID) {
            if (accept) {
                ++inputs;
                ++fed;
                last_progress = c;
                if (cyc) std::fprintf(cyc, "in %ld\n", c);
                expect.push_back(pc);
                ++pc;
                drv = NEXT;
            }
        } else if (drv == WAIT_OUT) {
            if (got >= fed) {
                drv = RESET;
                drv_count = reset_len;
            }
        } else if (drv == RESET) {
            if (--drv_count <= 0) {
                ++epoch;
                fed = got = 0;
                expect.clear();
                last_progress = c;
                drv = NEXT;
            }
        } else if (drv == FINAL) {
            if (got >= fed) {
                drv = DONE;
                end_cycle = c;
            }
        }
        if (c - last_progress > timeout) {
            status = "timeout";
            end_cycle = c;
            break;
        }
    }
    top->final();
    if (cyc) std::fclose(cyc);
    if (cnt) std::fclose(cnt);
    FILE* r = std::fopen(argv[3], "w");
    if (!r) {
        std::fprintf(stderr, "cannot write %s\n", argv[3]);
        return 2;
    }
    std::fprintf(r, "status %s\ncycles %ld\ninputs %ld\noutputs %ld\n", status.c_str(), end_cycle,
                 inputs, outputs);
    if (!detail.empty()) std::fprintf(r, "%s\n", detail.c_str());
    std::fclose(r);
    return 0;
}
