/**
 * The API's TLS material in `<stateDir>/tls/`: the CA (made once, never
 * replaced: its hash is what every agent pins) and the server certificate,
 * reissued whenever it no longer fits (SANs changed, close to expiry, not signed
 * by this CA, or its key is missing).
 *
 *   ca.crt      the CA certificate            0644
 *   ca.key      its private key               0600
 *   ca.hash     sha256:<hex>, the pin         0644 (derived; rewritten at every start)
 *   server.crt  the API's certificate         0644
 *   server.key  its private key               0600
 */
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ControllerFiles, spkiHash } from "@weft/protocol";
import type { Logger } from "pino";
import { createCa, issueServerCertificate, keyMatches, subjectAltNames, type KeyAndCert } from "./certs.js";
import { sameSans } from "./sans.js";

export const TLS_DIR = ControllerFiles.tlsDir;
export const CA_CERT_FILE = ControllerFiles.caCert;
export const CA_KEY_FILE = "ca.key";
export const CA_HASH_FILE = ControllerFiles.caHash;
export const SERVER_CERT_FILE = "server.crt";
export const SERVER_KEY_FILE = "server.key";

const DAY = 86_400_000;
export const CA_LIFETIME_DAYS = 3650;
export const SERVER_LIFETIME_DAYS = 365;
/** A server certificate with less than this left is reissued. */
export const RENEW_BEFORE_DAYS = 30;

/** The CA files are unusable: the controller refuses to start rather than change the pin. */
export class TlsStateError extends Error {
  override readonly name = "TlsStateError";
  readonly retryable = false;
}

export interface ApiTlsOptions {
  /** `<stateDir>/tls`. */
  dir: string;
  /** The SANs the server certificate must carry (see sans.ts). */
  sans: string[];
  log: Logger;
  now?: () => Date;
}

export class ApiTls {
  private constructor(
    private readonly opts: ApiTlsOptions,
    private readonly ca: KeyAndCert,
    private server: KeyAndCert,
    /** Pin of the CA: `sha256:<hex of SHA-256 over its DER SubjectPublicKeyInfo>`. */
    readonly caHash: string,
  ) {}

  /** Loads the CA (creating it on first start) and a fitting server certificate. */
  static async open(opts: ApiTlsOptions): Promise<ApiTls> {
    const now = opts.now ?? (() => new Date());
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await chmod(opts.dir, 0o700);
    const ca = await loadOrCreateCa(opts.dir, now(), opts.log);
    const caHash = spkiHash(ca.certPem);
    await writeFileAtomic(join(opts.dir, CA_HASH_FILE), `${caHash}\n`, 0o644);
    const tls = new ApiTls(opts, ca, { certPem: "", keyPem: "" }, caHash);
    const existing = await readPair(opts.dir, SERVER_CERT_FILE, SERVER_KEY_FILE);
    if (existing) tls.server = existing;
    await tls.refresh();
    return tls;
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  /** The SANs of the server certificate in use. */
  get sans(): string[] {
    return subjectAltNames(this.server.certPem);
  }

  get serverNotAfter(): Date {
    return new Date(new X509Certificate(this.server.certPem).validTo);
  }

  /** Key and chain (server certificate, then the CA) for an https server. */
  serverOptions(): { key: string; cert: string } {
    return { key: this.server.keyPem, cert: `${this.server.certPem.trimEnd()}\n${this.ca.certPem}` };
  }

  /** Reissues the server certificate if it no longer fits; resolves true when it did. */
  async refresh(): Promise<boolean> {
    const now = (this.opts.now ?? (() => new Date()))();
    const why = this.reissueReason(now);
    if (!why) return false;
    const caNotAfter = new Date(new X509Certificate(this.ca.certPem).validTo);
    const notAfter = new Date(Math.min(now.getTime() + SERVER_LIFETIME_DAYS * DAY, caNotAfter.getTime()));
    this.server = await issueServerCertificate(this.ca, { sans: this.opts.sans, now, notAfter });
    // Key first: a crash in between leaves a key without its certificate, which the next start reissues.
    await writeFileAtomic(join(this.opts.dir, SERVER_KEY_FILE), this.server.keyPem, 0o600);
    await writeFileAtomic(join(this.opts.dir, SERVER_CERT_FILE), this.server.certPem, 0o644);
    this.opts.log.info({ reason: why, sans: this.opts.sans, notAfter: notAfter.toISOString() }, "issued the API server certificate");
    return true;
  }

  /**
   * Checks the server certificate every `intervalMs` and calls `onRenewed` after
   * reissuing it (so a long-running controller never serves an expired one).
   */
  renewEvery(intervalMs: number, onRenewed: (opts: { key: string; cert: string }) => void): { stop(): void } {
    const timer = setInterval(() => {
      this.refresh()
        .then((renewed) => renewed && onRenewed(this.serverOptions()))
        .catch((err: unknown) => this.opts.log.error({ err }, "cannot renew the API server certificate; will try again"));
    }, intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }

  private reissueReason(now: Date): string | undefined {
    if (this.server.certPem === "") return "no server certificate yet";
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(this.server.certPem);
    } catch {
      return "server.crt is not a certificate";
    }
    const ca = new X509Certificate(this.ca.certPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return "server.crt is not signed by this CA";
    if (!safeKeyMatches(this.server.certPem, this.server.keyPem)) return "server.key does not belong to server.crt";
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY) return `expires ${new Date(cert.validTo).toISOString()}`;
    if (!sameSans(subjectAltNames(this.server.certPem), this.opts.sans)) return "the SANs it needs changed";
    return undefined;
  }
}

async function loadOrCreateCa(dir: string, now: Date, log: Logger): Promise<KeyAndCert> {
  const existing = await readPair(dir, CA_CERT_FILE, CA_KEY_FILE);
  if (existing) {
    let matches: boolean;
    try {
      matches = keyMatches(existing.certPem, existing.keyPem);
    } catch (err) {
      throw new TlsStateError(`${join(dir, CA_CERT_FILE)} or ${CA_KEY_FILE} cannot be read as a certificate and key: restore both from a backup (a new CA changes the pin every agent uses)`, { cause: err });
    }
    if (!matches) throw new TlsStateError(`${join(dir, CA_KEY_FILE)} is not the key of ${CA_CERT_FILE}: restore both from a backup (a new CA changes the pin every agent uses)`);
    await tightenMode(join(dir, CA_KEY_FILE), log);
    return existing;
  }
  const ca = await createCa({ now, notAfter: new Date(now.getTime() + CA_LIFETIME_DAYS * DAY) });
  await writeFileAtomic(join(dir, CA_KEY_FILE), ca.keyPem, 0o600);
  await writeFileAtomic(join(dir, CA_CERT_FILE), ca.certPem, 0o644);
  log.info({ caHash: spkiHash(ca.certPem) }, "created the controller CA");
  return ca;
}

/** Both files, or undefined when neither exists; only one of the two is an error for the CA. */
async function readPair(dir: string, certFile: string, keyFile: string): Promise<KeyAndCert | undefined> {
  const [certPem, keyPem] = await Promise.all([readOptional(join(dir, certFile)), readOptional(join(dir, keyFile))]);
  if (certPem === undefined && keyPem === undefined) return undefined;
  if (certFile === CA_CERT_FILE && (certPem === undefined || keyPem === undefined)) {
    const missing = certPem === undefined ? certFile : keyFile;
    throw new TlsStateError(`${join(dir, missing)} is missing but its pair is there: restore it from a backup, or move both away to make a new CA (every agent and admin then needs the new --ca-hash)`);
  }
  return { certPem: certPem ?? "", keyPem: keyPem ?? "" };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function tightenMode(path: string, log: Logger): Promise<void> {
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  await chmod(path, 0o600);
  log.warn({ path, mode: mode.toString(8) }, "the CA key was readable by others; set its mode to 0600");
}

function safeKeyMatches(certPem: string, keyPem: string): boolean {
  try {
    return keyMatches(certPem, keyPem);
  } catch {
    return false;
  }
}

let tmpSeq = 0;

async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}
