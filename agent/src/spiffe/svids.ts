/**
 * The X.509-SVIDs this host holds, one per SPIFFE ID it serves (its own identity and its
 * workloads'): for each, a key made here, a CSR sent to the controller, the signed certificate
 * kept in memory. Each SVID is renewed at half of its lifetime with a new key (retried with backoff,
 * 1 s doubling to 30 s, until it works: the old SVID stays in use meanwhile), and every renewal is
 * announced to listeners, so connected Workload API clients get it on their open stream.
 *
 * `setWanted` is the only input: IDs no longer wanted are dropped (and announced) at once.
 */
import { X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import { AbortedError, retry } from "@weft/util";
import { newSvidKey } from "./csr.js";

export interface X509Svid {
  spiffeId: string;
  /** The certificate, DER. */
  certDer: Buffer;
  certPem: string;
  /** The private key, PKCS#8 DER (never leaves this process except to the workload it belongs to). */
  keyDer: Buffer;
  serial: string;
  notAfter: Date;
}

/** Signs a CSR (the controller, over NATS). Throws when refused or unreachable. */
export type X509Signer = (spiffeId: string, csrPem: string) => Promise<{ certificate: string; expiresAt: string }>;

export interface X509SvidSourceOptions {
  sign: X509Signer;
  log: Logger;
  now?: () => number;
  /** Backoff of a failed signing (tests shorten it). */
  retry?: { initialMs: number; maxMs: number };
}

interface Entry {
  svid: X509Svid | undefined;
  stop: AbortController;
  timer: NodeJS.Timeout | undefined;
}

/** When to renew an SVID received at `receivedAt` that expires at `notAfter`: half-way (pure). */
export function renewAt(receivedAt: number, notAfter: number): number {
  return receivedAt + Math.max(0, notAfter - receivedAt) / 2;
}

export class X509SvidSource {
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(spiffeId: string) => void>();

  constructor(private readonly o: X509SvidSourceOptions) {}

  /** The SPIFFE IDs to hold SVIDs for; new ones are signed now, dropped ones forgotten. */
  setWanted(ids: Iterable<string>): void {
    const want = new Set(ids);
    for (const [id, entry] of this.#entries) {
      if (want.has(id)) continue;
      this.#drop(entry);
      this.#entries.delete(id);
      this.o.log.info({ spiffeId: id }, "SVID no longer needed; dropped");
      this.#announce(id);
    }
    for (const id of want) {
      if (this.#entries.has(id)) continue;
      const entry: Entry = { svid: undefined, stop: new AbortController(), timer: undefined };
      this.#entries.set(id, entry);
      void this.#issue(id, entry);
    }
  }

  get(spiffeId: string): X509Svid | undefined {
    return this.#entries.get(spiffeId)?.svid;
  }

  /** Whether `spiffeId` is wanted (its SVID may still be on its way). */
  wants(spiffeId: string): boolean {
    return this.#entries.has(spiffeId);
  }

  /** Called with the SPIFFE ID whenever its SVID is new, renewed or dropped. Returns the unsubscribe. */
  onChange(listener: (spiffeId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    for (const entry of this.#entries.values()) this.#drop(entry);
    this.#entries.clear();
  }

  #drop(entry: Entry): void {
    entry.stop.abort();
    if (entry.timer) clearTimeout(entry.timer);
  }

  async #issue(id: string, entry: Entry): Promise<void> {
    const backoff = this.o.retry ?? { initialMs: 1000, maxMs: 30_000 };
    try {
      const svid = await retry(() => this.#signOnce(id), {
        ...backoff,
        signal: entry.stop.signal,
        onRetry: (err, delay) => this.o.log.warn({ spiffeId: id, err, retryInMs: delay }, "cannot get an X.509-SVID signed yet; retrying"),
      });
      if (entry.stop.signal.aborted) return;
      const first = entry.svid === undefined;
      entry.svid = svid;
      const now = this.#now();
      const delay = Math.max(1000, renewAt(now, svid.notAfter.getTime()) - now);
      entry.timer = setTimeout(() => void this.#issue(id, entry), delay);
      entry.timer.unref();
      this.o.log.info({ spiffeId: id, serial: svid.serial, notAfter: svid.notAfter.toISOString(), renewInMs: Math.round(delay) }, first ? "X.509-SVID issued" : "X.509-SVID rotated");
      this.#announce(id);
    } catch (err) {
      if (!(err instanceof AbortedError)) this.o.log.error({ spiffeId: id, err }, "X.509-SVID issuance stopped");
    }
  }

  async #signOnce(id: string): Promise<X509Svid> {
    const key = await newSvidKey(id);
    const signed = await this.o.sign(id, key.csrPem);
    const cert = new X509Certificate(signed.certificate);
    if (!(cert.subjectAltName ?? "").split(/,\s*/).includes(`URI:${id}`)) {
      throw new Error(`the controller signed a certificate for ${cert.subjectAltName ?? "no name"}, not ${id}`);
    }
    return { spiffeId: id, certDer: Buffer.from(cert.raw), certPem: signed.certificate, keyDer: key.pkcs8, serial: cert.serialNumber, notAfter: new Date(cert.validTo) };
  }

  #announce(id: string): void {
    for (const l of this.#listeners) {
      try {
        l(id);
      } catch (err) {
        this.o.log.error({ spiffeId: id, err }, "SVID listener threw");
      }
    }
  }

  #now(): number {
    return (this.o.now ?? Date.now)();
  }
}
