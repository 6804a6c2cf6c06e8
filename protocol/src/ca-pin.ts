/**
 * Trusting the controller's own CA by pin, the way kubeadm's
 * `--discovery-token-ca-cert-hash` does: no PKI, just a hash printed by the
 * controller and passed to the agent or CLI with `--ca-hash`.
 *
 * The pin is `sha256:<hex>` over the DER SubjectPublicKeyInfo of the CA
 * certificate. `resolvePinnedCa` opens one TLS connection without verification,
 * sends no application data, and looks in the chain the server presents for the
 * certificate with the pinned hash; it also checks that the chain from the leaf
 * up to that certificate is signed link by link. The caller then makes its real
 * request with that certificate as the only trusted CA and normal verification,
 * host name included, so a man in the middle fails before any request byte is sent.
 */
import { X509Certificate, createHash } from "node:crypto";
import { isIP } from "node:net";
import { connect, type DetailedPeerCertificate } from "node:tls";
import { z } from "zod";

/** A CA pin: `sha256:` and 64 hex digits (upper case accepted, compared in lower case). */
export const caHash = z.string().regex(/^sha256:[0-9a-fA-F]{64}$/, "must be sha256: followed by 64 hex digits (printed by `weft keys create`)");

/** The pin of a certificate: SHA-256 over its DER SubjectPublicKeyInfo. */
export function spkiHash(cert: X509Certificate | string): string {
  const x = typeof cert === "string" ? new X509Certificate(cert) : cert;
  const spki = x.publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

/** The controller presented a certificate chain that the pin does not vouch for. Not retryable. */
export class CaPinMismatchError extends Error {
  readonly retryable = false;
  constructor(
    /** Pins of every certificate presented, leaf first. */
    readonly presented: string[],
    readonly reason: "no certificate with the pinned hash" | "the leaf is not signed by the pinned CA",
  ) {
    // The last certificate is the one that would be the CA: its pin is what a user would compare.
    const got = presented.at(-1) ?? "no certificate";
    const detail = reason === "no certificate with the pinned hash" ? "" : ": it presents the pinned CA but its certificate is not signed by it";
    super(`controller certificate does not match --ca-hash${detail} (got ${got}); check the hash from \`weft keys create\``);
    this.name = "CaPinMismatchError";
  }
}

/** The TLS probe could not complete (connection refused, timeout, not TLS). Retryable. */
export class CaPinUnreachableError extends Error {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CaPinUnreachableError";
  }
}

export interface PinnedCaOptions {
  host: string;
  port: number;
  caHash: string;
  timeoutMs?: number;
}

/**
 * Connects to `host:port`, finds the certificate with the pinned hash in the chain
 * the server presents and returns it as PEM. Throws CaPinMismatchError when no
 * certificate matches or the leaf does not chain to it, CaPinUnreachableError when
 * no TLS handshake completes.
 */
export async function resolvePinnedCa(opts: PinnedCaOptions): Promise<string> {
  const chain = await presentedChain(opts);
  const want = opts.caHash.toLowerCase();
  const pins = chain.map((c) => spkiHash(c));
  const at = pins.indexOf(want);
  if (at < 0) throw new CaPinMismatchError(pins, "no certificate with the pinned hash");
  for (let i = 0; i < at; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) throw new CaPinMismatchError(pins, "the leaf is not signed by the pinned CA");
  }
  return chain[at]!.toString();
}

/** The server's certificate chain, leaf first, from one handshake that sends no data. */
function presentedChain(opts: PinnedCaOptions): Promise<X509Certificate[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: opts.host,
      port: opts.port,
      // Verification happens after the pin is found, on the real request.
      rejectUnauthorized: false,
      ...(isIP(opts.host) ? {} : { servername: opts.host }),
    });
    const fail = (err: Error) => {
      socket.destroy();
      reject(new CaPinUnreachableError(`TLS handshake with ${opts.host}:${opts.port} failed: ${err.message}`, { cause: err }));
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no handshake within ${timeoutMs} ms`)));
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      const chain: X509Certificate[] = [];
      const seen = new Set<string>();
      for (let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
        seen.add(c.fingerprint256);
        chain.push(new X509Certificate(c.raw));
      }
      socket.destroy();
      if (chain.length === 0) reject(new CaPinUnreachableError(`${opts.host}:${opts.port} presented no certificate`));
      else resolve(chain);
    });
  });
}

/** Error codes of a TLS verification failure: not a network problem, so not worth retrying. */
const TLS_VERIFY_CODES = new Set([
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "INVALID_CA",
]);

/** True when `err` is Node's report of a certificate that failed verification. */
export function isTlsVerificationError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && TLS_VERIFY_CODES.has(code);
}
