import { describe, expect, it } from "vitest";
import { cpuDelta, parseCgroupUsage, parsePidTicks, parsePressureSome, parseProcStat, type CpuSnapshot } from "./services-cpu.js";
import { lbDelta } from "./services-lb.js";

describe("bench services CPU and lb accounting", () => {
  it("bench - /proc/stat, cgroup cpu.stat, PSI and /proc/<pid>/stat are parsed", () => {
    const stat = "cpu  100 5 50 800 20 1 4 0 0 0\ncpu0 50 2 25 400 10 0 2 0 0 0\n";
    expect(parseProcStat(stat), "busy = all - idle - iowait; irq = irq + softirq").toEqual({ busy: 160, irq: 5, all: 980 });
    expect(() => parseProcStat("intr 1 2 3"), "no cpu line").toThrow(/no cpu line/);
    expect(parseCgroupUsage("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n")).toBe(123456);
    expect(parseCgroupUsage("nr_periods 0\n")).toBeUndefined();
    expect(parsePressureSome("some avg10=1.00 avg60=2.00 avg300=3.00 total=987654\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n")).toBe(987654);
    // comm with a space and a parenthesis: fields after the last ") " count
    expect(parsePidTicks("42 (wire guard) go) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 1 0 0")).toBe(325);
  });

  it("bench - a CPU delta is per consumer, with the machine's busy share and the rest as other", () => {
    const a: CpuSnapshot = { atMs: 0, busyTicks: 1000, irqTicks: 100, allTicks: 5000, pressureSomeUs: 0, cgroupsUs: { "gcp-1 cgroup": 1_000_000 }, groupsTicks: { "wg-go gcp-1": 100 } };
    const b: CpuSnapshot = { atMs: 2000, busyTicks: 1300, irqTicks: 120, allTicks: 5400, pressureSomeUs: 500_000, cgroupsUs: { "gcp-1 cgroup": 2_500_000 }, groupsTicks: { "wg-go gcp-1": 150 } };
    const d = cpuDelta(a, b);
    expect(d.seconds).toBe(2);
    expect(d.machineBusy, "300 of 400 ticks busy").toBeCloseTo(0.75);
    expect(d.pressureSome, "0.5 s of stall over 2 s").toBeCloseTo(0.25);
    expect(d.cgroups).toEqual({ "gcp-1 cgroup": 1.5 });
    expect(d.groups).toEqual({ "wg-go gcp-1": 0.5 });
    expect(d.irq, "20 ticks of interrupts").toBeCloseTo(0.2);
    expect(d.other, "3 s busy - 0.2 irq - 1.5 - 0.5").toBeCloseTo(0.8);
  });

  it("bench - lb delta: connects per backend during the measurement, and the tc fallback's flows", () => {
    const a = { backends: { "10.10.0.5": { connects: 10, established: 10, failures: 0 } }, tcNatFlows: 0, progs: { "weft_sock_connect4 (cgroup_inet4_connect)": { runs: 100, ns: 50_000 } } };
    const b = {
      backends: { "10.10.0.5": { connects: 26, established: 26, failures: 1 }, "10.20.0.6": { connects: 16, established: 16, failures: 0 } },
      tcNatFlows: 0,
      progs: { "weft_sock_connect4 (cgroup_inet4_connect)": { runs: 132, ns: 66_000 }, "weft_sock_ops (sock_ops)": { runs: 0, ns: 0 } },
    };
    expect(lbDelta(a, b)).toEqual({
      connects: { "10.10.0.5": 16, "10.20.0.6": 16 },
      failures: 1,
      tcNatFlows: 0,
      progs: { "weft_sock_connect4 (cgroup_inet4_connect)": { runs: 32, nsPerRun: 500 }, "weft_sock_ops (sock_ops)": { runs: 0, nsPerRun: 0 } },
    });
  });
});
