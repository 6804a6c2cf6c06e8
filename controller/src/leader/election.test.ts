/**
 * One LeaderElection on a real nats-server, with a short lease: the lease is renewed while the
 * duties are still starting (a slow first inventory sync on a busy machine must not cost the
 * lease), a controller whose renewal came too late takes its own lease back at the next tick
 * instead of waiting a whole lease behind itself, a first take that timed out (stored or not) is
 * retried before start() resolves, and untilLeading() answers for a controller about to lead but
 * refuses at once while another holds the lease.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateAuthority } from "../nats/authority-file.js";
import { connectController, ensureBuckets } from "../nats/connect.js";
import { startEmbeddedNats, type EmbeddedNats } from "../nats/embedded.js";
import { LEASE_KEY, LeaseRecord } from "./lease.js";
import { LeaderElection } from "./election.js";

const silent = pino({ level: "silent" });
const LEASE_MS = 600;
/** The election's request timeout for this lease (election.ts: a quarter lease, at least 500 ms). */
const REQUEST_TIMEOUT_MS = 500;

let nc: NatsConnection;

describe("leader election - one controller, short lease", () => {
  let dir: string;
  let srv: EmbeddedNats;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-election-"));
    const authority = await loadOrCreateAuthority(join(dir, "authority"));
    srv = await startEmbeddedNats({ stateDir: dir, port: 0, authority });
    nc = await connectController({ servers: srv.url, authority });
    await ensureBuckets(nc);
  }, 60_000);

  afterAll(async () => {
    await nc?.close().catch(() => {});
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("leader election - a duty that takes three leases to start does not cost the lease", async () => {
    const election = new LeaderElection({ nc, leaseMs: LEASE_MS, id: "slow-duty", log: silent });
    let lost = 0;
    let sampling = false;
    const sampler = setInterval(() => void (!sampling || election.isLeader() || lost++), 10);
    try {
      const slowStart = () => {
        sampling = true; // from the moment it leads
        return new Promise<void>((r) => setTimeout(r, 3 * LEASE_MS));
      };
      election.duty({ name: "slow", start: slowStart, stop: () => undefined });
      await election.start();
      await new Promise((r) => setTimeout(r, LEASE_MS));
      expect(lost, "samples (every 10 ms) in which the controller did not lead").toBe(0);
      expect(election.isLeader(), "still the leader after the duty started").toBe(true);
    } finally {
      clearInterval(sampler);
      await election.stop();
    }
  });

  it("leader election - a leader that missed its lease takes it back at the next tick when nobody wrote since", async () => {
    const election = new LeaderElection({ nc, leaseMs: LEASE_MS, id: "late-renewal", log: silent });
    try {
      await election.start();
      expect(election.isLeader(), "leads after start").toBe(true);
      const term = election.term!;
      // Block the event loop past the lease: the expiry fires first, then the late renewal.
      const until = Date.now() + LEASE_MS + 200;
      while (Date.now() < until) {
        /* busy: what a starved process looks like to its timers */
      }
      const back = Date.now();
      await new Promise((r) => setTimeout(r, 50));
      while (!election.isLeader() && Date.now() - back < 3 * LEASE_MS) await new Promise((r) => setTimeout(r, 10));
      const took = Date.now() - back;
      expect(election.isLeader(), `leads again (${took} ms after the stall)`).toBe(true);
      expect(took, "back well within one lease (a stranger's lease would take a whole lease to take over)").toBeLessThan(LEASE_MS);
      expect(election.term, "a new term").toBeGreaterThan(term);
      const entry = await (await new Kvm(nc).open(Buckets.leader)).get(LEASE_KEY);
      expect(LeaseRecord.parse(entry!.json()).holder, "the lease names it").toBe("late-renewal");
    } finally {
      await election.stop();
    }
  });

  it("leader election - a first take that timed out but was stored is retried: the controller leads when start() resolves", async () => {
    await clearLease();
    // The first write to the lease: sent, then the event loop is held past the request timeout,
    // so the timeout fires before the reply (stored) is read — a busy machine's first take.
    let stalled = 0;
    const stallFirstLeaseWrite = new Proxy(nc, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (prop !== "request" || typeof v !== "function") return typeof v === "function" ? v.bind(target) : v;
        return (subject: string, ...rest: unknown[]) => {
          const reply = (v as (...a: unknown[]) => unknown).call(target, subject, ...rest);
          if (subject === `$KV.${Buckets.leader}.${LEASE_KEY}` && stalled++ === 0) {
            // After the client's own flush (a microtask queued by the request).
            queueMicrotask(() => {
              const until = Date.now() + REQUEST_TIMEOUT_MS + 300;
              while (Date.now() < until) {
                /* busy */
              }
            });
          }
          return reply;
        };
      },
    });
    const election = new LeaderElection({ nc: stallFirstLeaseWrite, leaseMs: LEASE_MS, id: "first-take-timed-out", log: silent });
    try {
      await election.start();
      expect(stalled, "lease writes (the first one stalled)").toBeGreaterThanOrEqual(2);
      expect(election.isLeader(), "leads when start() resolves").toBe(true);
      expect(await election.untilLeading(), "untilLeading() at once").toBe(true);
    } finally {
      await election.stop();
    }
  });

  it("leader election - untilLeading(): true for a controller taking its own lapsed lease back, false at once while another controller holds it", async () => {
    await clearLease();
    const first = new LeaderElection({ nc, leaseMs: LEASE_MS, id: "first", log: silent });
    const second = new LeaderElection({ nc, leaseMs: LEASE_MS, id: "second", log: silent });
    try {
      await first.start();
      await second.start();
      expect([first.isLeader(), second.isLeader()], "the first leads").toEqual([true, false]);
      const asked = performance.now();
      expect(await second.untilLeading(), "the follower: false").toBe(false);
      expect(performance.now() - asked, "answered after one read, without waiting to lead (ms)").toBeLessThan(LEASE_MS / 2);
      expect(second.leader()?.holder, "the follower names the leader").toBe("first");
      await second.stop();

      // Starve the leader past its lease: it stops leading, and takes its own lease back at its next tick.
      const until = Date.now() + LEASE_MS + 200;
      while (Date.now() < until) {
        /* busy */
      }
      expect(first.isLeader(), "lapsed").toBe(false);
      expect(first.leader(), "nobody named while its own lease lapsed (not itself)").toBeUndefined();
      const waited = performance.now();
      expect(await first.untilLeading(), "the lapsed leader: true once it took its lease back").toBe(true);
      expect(performance.now() - waited, "within a lease (ms)").toBeLessThan(LEASE_MS);
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});

async function clearLease(): Promise<void> {
  await (await new Kvm(nc).open(Buckets.leader)).purge(LEASE_KEY);
}
