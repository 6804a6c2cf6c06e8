import { describe, expect, it } from "vitest";
import { checksOf, parseWrk, summarize, type ServiceSample } from "./services-wrk.js";

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

  it("bench - summaries are medians over rounds; the checks are the issue's targets", () => {
    const s = (c: ServiceSample["case"], rps: number, p99: number) => ({ ...parseWrk(WRK), case: c, round: 0, target: "", startedAt: "", requestsPerSecond: rps, p99Ms: p99 }) as ServiceSample;
    const samples = [s("direct", 100, 10), s("direct", 300, 30), s("vip", 200, 10.4), s("vip", 100, 10.2), s("haproxy", 70, 40)];
    const summary = { direct: summarize(samples, "direct")!, vip: summarize(samples, "vip")!, haproxy: summarize(samples, "haproxy")! };
    expect([summary.direct.requestsPerSecond, summary.vip.requestsPerSecond, summary.direct.p99Ms]).toEqual([200, 150, 20]);
    expect(summarize(samples, "vip-new")).toBeUndefined();
    const checks = checksOf(summary);
    expect([checks.p99Within5Percent, checks.twiceHaproxy]).toEqual([true, true]);
    expect(checks.vipRpsOverHaproxy).toBeCloseTo(150 / 70);
    expect(Number.isNaN(checks.vipNewConnOverDirect), "no new-connection cases: not a number").toBe(true);
  });
});
