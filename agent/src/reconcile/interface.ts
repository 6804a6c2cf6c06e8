/**
 * The overlay interface as the agent wants it: key, port, MTU, this node's overlay address, and
 * routes for the overlay's ranges plus the site routes taken from other sites' gateways (the
 * site-routes reconciler sets those). It owns the session epoch as well: an interface created
 * afresh has no sessions, so it gets a new epoch (peers/epochs.ts) that tells peers behind NAT to
 * handshake again. And it owns the WireGuard key: rotateKey switches to a new one (see there).
 */
import { rename, rm } from "node:fs/promises";
import type { Logger } from "pino";
import { newSessionEpoch } from "../peers/epochs.js";
import type { StateHolder } from "../state/holder.js";
import { generateKeyPair, readPrivateKeyFile, writePrivateKeyFile, type EnsureOptions, type PrivateKey, type WireGuard } from "../wireguard/index.js";
import { KeyedSerial, isRetryable, retry, type BackoffOptions } from "@weft/util";

export interface OverlayInterfaceOptions {
  wireguard: WireGuard;
  state: StateHolder;
  /** Everything of the interface but its routes. */
  settings: Omit<EnsureOptions, "routes">;
  /** The overlay's ranges (overlay CIDR, workload CIDR): always routed into the interface. */
  overlayRanges: readonly string[];
  log: Logger;
  /** How long a key rotation keeps asking an unreachable controller (default: 1 s doubling to 5 s, 6 attempts). */
  publishRetry?: BackoffOptions & { maxAttempts?: number };
}

/** Asks the controller to put `publicKey` in this node's records; resolves once peers can see it. */
export type PublishKey = (publicKey: string) => Promise<void>;

export class OverlayInterface {
  #siteRoutes: readonly string[] = [];
  readonly #rotations = new KeyedSerial();

  constructor(private readonly o: OverlayInterfaceOptions) {}

  /** Creates the interface or converges it, with these site routes; renews the session epoch when it was created (or none was kept). */
  async bringUp(siteRoutes: readonly string[]): Promise<void> {
    const ensured = await this.#ensure(siteRoutes);
    if (ensured.created || !this.o.state.current.sessionEpoch) {
      await this.o.state.update({ sessionEpoch: newSessionEpoch() });
      this.o.log.info({ created: ensured.created }, "new session epoch: peers behind NAT handshake again");
    }
  }

  /** Routes exactly these site routes into the interface (beside the overlay's ranges). False when they were already routed. */
  async routeSiteRoutes(routes: readonly string[]): Promise<boolean> {
    if (routes.join() === this.#siteRoutes.join()) return false;
    await this.#ensure(routes);
    return true;
  }

  /**
   * Rotates the interface's WireGuard key. A new key pair is made here (the private key never
   * leaves the host) and written to `<key file>.next`; the interface switches to it FIRST, then its
   * public key goes to the controller (`publish`, which resolves once the node and peer records
   * carry it). That order is what keeps the switch nearly lossless: a peer takes the new record
   * only after this end already answers to the new key, and greets it at once (the warm-up of a
   * newly added peer starts the handshake), while packets this end sends meanwhile wait in
   * WireGuard's queue for that handshake. Then `.next` replaces the key file and the old key is
   * gone from the host; every peer drops it with the old record.
   *
   * A refusal switches the interface back to the old key (the controller changed nothing). A
   * controller that cannot be reached is asked again for a while (the request is idempotent); if
   * it stays unreachable the interface goes back to the old key and `.next` stays, so the next
   * rotation or start finishes it (resumeRotation). One rotation at a time.
   */
  async rotateKey(publish: PublishKey): Promise<{ publicKey: string }> {
    return this.#rotations.run("rotate", async () => {
      const pending = await this.#pendingKey();
      const next = pending ?? generateKeyPair().privateKey;
      if (!pending) await writePrivateKeyFile(this.#nextPath, next);
      return this.#switchTo(next, publish);
    });
  }

  /** Finishes a rotation a crash or an unreachable controller interrupted (a `.next` key file left behind); undefined when there is none. */
  async resumeRotation(publish: PublishKey): Promise<{ publicKey: string } | undefined> {
    return this.#rotations.run("rotate", async () => {
      const pending = await this.#pendingKey();
      return pending ? this.#switchTo(pending, publish) : undefined;
    });
  }

  get #nextPath(): string {
    return `${this.o.settings.privateKeyPath}.next`;
  }

  async #pendingKey(): Promise<PrivateKey | undefined> {
    try {
      return await readPrivateKeyFile(this.#nextPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      this.o.log.warn({ err }, "dropping an unreadable pending WireGuard key");
      await rm(this.#nextPath, { force: true });
      return undefined;
    }
  }

  async #switchTo(next: PrivateKey, publish: PublishKey): Promise<{ publicKey: string }> {
    const publicKey = next.publicKey();
    await this.#ensure(this.#siteRoutes, this.#nextPath);
    try {
      await retry(() => publish(publicKey), { ...(this.o.publishRetry ?? { initialMs: 1000, maxMs: 5000, maxAttempts: 6 }), retryIf: isRetryable, onRetry: (err, retryInMs) => this.o.log.warn({ err, retryInMs }, "cannot publish the new WireGuard key yet") });
    } catch (err) {
      // Back to the key peers know. A refusal leaves nothing to finish; an unreachable controller
      // may have taken the key, so `.next` stays for resumeRotation.
      await this.#ensure(this.#siteRoutes);
      if (!isRetryable(err)) await rm(this.#nextPath, { force: true });
      throw err;
    }
    await rename(this.#nextPath, this.o.settings.privateKeyPath);
    await this.#ensure(this.#siteRoutes);
    this.o.log.info({ publicKey }, "rotated the WireGuard key; the old one is gone");
    return { publicKey };
  }

  async #ensure(siteRoutes: readonly string[], privateKeyPath = this.o.settings.privateKeyPath) {
    const ensured = await this.o.wireguard.ensure({ ...this.o.settings, privateKeyPath, routes: [...this.o.overlayRanges, ...siteRoutes] });
    this.#siteRoutes = [...siteRoutes];
    return ensured;
  }
}
