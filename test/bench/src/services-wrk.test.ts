import { describe, expect, it } from "vitest";
import { balancedOrder, caseLabel, checksOf, isNewConnectionCase, pairedRatio, parseWrk, summarize, wrkMixScript, type ServiceSample } from "./services-wrk.js";

const WRK = `Running 1s test @ http://127.0.0.1:18099/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.50ms   13.19ms  99.08ms   90.64%
    Req/Sec     1.37k     1.14k    4.32k    80.00%
  Latency Distribution
     50%  274.00us
     75%    8.77ms
     90%   19.50ms
     99%    1.20s
  1389 requests in 1.03s, 168.20KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   1353.55
Transfer/sec:    163.91KB
`;

describe("bench services", () => {
  it("bench - wrk --latency output: requests/s, percentiles in ms whatever the unit, errors", () => {
    expect(parseWrk(WRK)).toEqual({
      requestsPerSecond: 1353.55,
      requests: 1389,
      seconds: 1.03,
      p50Ms: 0.274,
      p75Ms: 8.77,
      p90Ms: 19.5,
      p99Ms: 1200,
      errors: { connect: 0, read: 3, write: 0, timeout: 2, non2xx: 7 },
    });
    expect(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused")).toThrow(/not wrk --latency output/);
  });

  it("bench - summaries are medians with min–max over rounds; the checks pair the cases within each round", () => {
    const s = (c: ServiceSample["case"], round: number, rps: number, p99: number) => ({ ...parseWrk(WRK), case: c, round, position: 0, target: "", startedAt: "", requestsPerSecond: rps, p99Ms: p99 }) as ServiceSample;
    // Round 1 ran on a busier machine: every case slower. Paired ratios cancel that; medians of each case alone would not.
    const samples = [
      s("direct", 0, 300, 10), s("vip", 0, 290, 10.2), s("haproxy", 0, 140, 30),
      s("direct", 1, 100, 40), s("vip", 1, 110, 41), s("haproxy", 1, 50, 90),
      s("direct", 2, 200, 20), s("vip", 2, 200, 20.4), s("haproxy", 2, 90, 50),
    ];
    const direct = summarize(samples, "direct")!;
    expect(direct.requestsPerSecond, "req/s median, min, max").toEqual({ median: 200, min: 100, max: 300 });
    expect(direct.p99Ms).toEqual({ median: 20, min: 10, max: 40 });
    expect(direct.perRound.map((r) => r.requestsPerSecond), "per round, in round order").toEqual([300, 100, 200]);
    expect(summarize(samples, "vip-new")).toBeUndefined();
    const checks = checksOf(samples);
    expect(checks.vipP99OverDirect.perRound.map((x) => x.toFixed(3))).toEqual(["1.020", "1.025", "1.020"]);
    expect(checks.vipP99OverDirect.median).toBeCloseTo(1.02);
    expect(checks.vipRpsOverHaproxy.median, "median of 290/140, 110/50, 200/90").toBeCloseTo(110 / 50);
    expect([checks.p99Within5Percent, checks.twiceHaproxy]).toEqual([true, true]);
    expect(Number.isNaN(checks.vipNewConnOverDirect.median), "no new-connection cases: not a number").toBe(true);
    expect(checks.vipNewConnOverDirect.perRound).toEqual([]);
    expect(checks.p99TargetResolvable, "no A/A control: nothing shows the run can resolve 5 %").toBe(false);
  });

  it("bench - a round missing one case of a pair gives no ratio for that round", () => {
    const s = (c: ServiceSample["case"], round: number, p99: number) => ({ ...parseWrk(WRK), case: c, round, position: 0, target: "", startedAt: "", p99Ms: p99 }) as ServiceSample;
    const r = pairedRatio([s("direct", 0, 10), s("vip", 0, 12), s("vip", 1, 99)], "vip", "direct", "p99Ms");
    expect(r.perRound, "only round 0 has both").toEqual([1.2]);
    expect(checksOf([s("direct", 0, 10), s("vip", 0, 12)]).p99Within5Percent, "1.2 > 1.05").toBe(false);
  });

  it("bench - the direct mix script sends wrk thread i to backend i mod n", () => {
    const lua = wrkMixScript([{ address: "10.10.0.5", port: 8080 }, { address: "10.20.0.6", port: 8080 }]);
    expect(lua).toContain('local backends = { { "10.10.0.5", "8080" }, { "10.20.0.6", "8080" } }');
    expect(lua).toContain("thread.addr = wrk.lookup(b[1], b[2])[1]");
    expect(lua).toContain("backends[(n - 1) % #backends + 1]");
    expect(() => wrkMixScript([{ address: 'x" } os.execute("id', port: 1 }]), "not an address: refused").toThrow(/not an IPv4 address/);
    expect(() => wrkMixScript([]), "no backends").toThrow(/no backends/);
  });

  it("bench - case labels: main cases and per-backend diagnostics", () => {
    expect(caseLabel("direct")).toMatch(/^\(a\) direct to the backends, same mix/);
    expect(caseLabel("direct:aws-1")).toBe("direct to aws-1 only");
    expect([isNewConnectionCase("vip-new"), isNewConnectionCase("vip")]).toEqual([true, false]);
  });

  it("bench - balanced order: every other round reversed, pairs rotated; each case before and after its neighbours", () => {
    const orders = [0, 1, 2, 3, 4, 5].map((r) => balancedOrder(["a", "b", "c"], r).join(""));
    expect(orders).toEqual(["abc", "cba", "bca", "acb", "cab", "bac"]);
    const before = (x: string, y: string) => orders.filter((o) => o.indexOf(x) < o.indexOf(y)).length;
    expect([before("a", "b"), before("b", "a")], "a before b as often as after").toEqual([3, 3]);
    expect(balancedOrder([], 3)).toEqual([]);
  });

  it("bench - the p99 target is resolvable only when every round's A/A ratio stays within 5 %", () => {
    const s = (c: ServiceSample["case"], round: number, p99: number) => ({ ...parseWrk(WRK), case: c, round, position: 0, target: "", startedAt: "", p99Ms: p99 }) as ServiceSample;
    const quiet = [s("direct", 0, 10), s("direct-again", 0, 10.3), s("vip", 0, 10.2), s("direct", 1, 11), s("direct-again", 1, 10.6), s("vip", 1, 11.1)];
    expect(checksOf(quiet).p99TargetResolvable, "A/A 1.03 and 0.96").toBe(true);
    const noisy = [...quiet, s("direct", 2, 10), s("direct-again", 2, 18), s("vip", 2, 10)];
    const c = checksOf(noisy);
    expect([c.p99TargetResolvable, c.directAgainP99OverDirect.max], "round 2's A/A ratio is 1.8").toEqual([false, 1.8]);
  });
});
