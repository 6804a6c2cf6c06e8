/**
 * One LeaderElection on a real nats-server, with a short lease: the lease is renewed while the
 * duties are still starting (a slow first inventory sync on a busy machine must not cost the
 * lease), and a controller whose renewal came too late takes its own lease back at the next tick
 * instead of waiting a whole lease behind itself.
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

describe("leader election - one controller, short lease", () => {
  let dir: string;
  let srv: EmbeddedNats;
  let nc: NatsConnection;

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
});
