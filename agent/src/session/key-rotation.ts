/**
 * WireGuard key rotation in the running agent: finishes a rotation a crash or an unreachable
 * controller left behind (a `.next` key file), serves `POST /v1/rotate-key` on the local API
 * (`weft agent rotate-key`), and rotates every `interface.keyRotationHours` when that is set.
 * The interface owns the key and does the switch (reconcile/interface.ts); the controller is told
 * over the agent's own NATS subject (session/nats.ts publishWireguardKey).
 */
import type { Logger } from "pino";
import type { OverlayInterface, PublishKey } from "../reconcile/interface.js";

export interface KeyRotationOptions {
  iface: Pick<OverlayInterface, "rotateKey" | "resumeRotation">;
  publish: PublishKey;
  /** Hours between rotations; 0 turns periodic rotation off. */
  everyHours: number;
  log: Logger;
}

export class KeyRotation {
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: KeyRotationOptions) {}

  start(): void {
    void this.o.iface.resumeRotation(this.o.publish).then(
      (done) => done && this.o.log.info({ publicKey: done.publicKey }, "finished an interrupted WireGuard key rotation"),
      (err: unknown) => this.o.log.warn({ err }, "cannot finish an interrupted WireGuard key rotation; the next rotation or start tries again"),
    );
    if (this.o.everyHours > 0) {
      this.#timer = setInterval(() => void this.rotate().catch((err: unknown) => this.o.log.warn({ err }, "periodic WireGuard key rotation failed; trying again at the next one")), this.o.everyHours * 3_600_000);
      this.#timer.unref();
    }
  }

  /** Rotates now (the local API's handler). */
  rotate(): Promise<{ publicKey: string }> {
    return this.o.iface.rotateKey(this.o.publish);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
