/**
 * Enrollment over the controller's REST API.
 *
 * Over https the controller is trusted only through the CA pinned by --ca-hash
 * (`@weft/protocol` ca-pin): one handshake that sends nothing finds the pinned CA
 * in the chain the controller presents, then the request is made with that CA as
 * the only trust anchor and normal host name verification. So the join key is
 * never sent to a server the pin does not vouch for. A certificate mismatch is
 * final (ControllerIdentityError); network failures and 5xx are retryable; a 4xx
 * is final and carries the controller's message.
 */
import type { IncomingMessage } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { ApiError, CaPinMismatchError, EnrollNonce, EnrollResponse, isTlsVerificationError, resolvePinnedCa, type EnrollRequest } from "@weft/protocol";
import { AgentError, ControllerIdentityError, ControllerUnavailableError, EnrollmentRejectedError } from "../errors.js";

/** The controller's CA, kept in the agent's state dir after enrollment. */
export const CONTROLLER_CA_FILE = "controller-ca.crt";

export interface EnrollOptions {
  /** Pin of the controller's CA (`sha256:…`); required for an https URL. */
  caHash?: string | undefined;
  timeoutMs?: number;
}

export interface Enrolled {
  response: EnrollResponse;
  /** The pinned CA certificate (PEM) the controller proved itself with; undefined over plain http. */
  caPem: string | undefined;
}

export async function enroll(controllerUrl: string, req: EnrollRequest, opts: EnrollOptions = {}): Promise<Enrolled> {
  const url = new URL("/v1/enroll", controllerUrl);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const caPem = url.protocol === "https:" ? await pinnedCa(url, opts.caHash, timeoutMs) : undefined;
  const res = await post(url, JSON.stringify(req), caPem, timeoutMs);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = undefined;
  }
  if (res.status >= 200 && res.status < 300) {
    const parsed = EnrollResponse.safeParse(body);
    if (!parsed.success) throw new ControllerUnavailableError(`enroll: controller answered with an unexpected body (${parsed.error.message})`);
    return { response: parsed.data, caPem };
  }
  const err = ApiError.safeParse(body);
  const message = err.success ? err.data.message : `HTTP ${res.status}`;
  if (res.status >= 500) throw new ControllerUnavailableError(`enroll: controller failed: ${message}`);
  throw new EnrollmentRejectedError(`enroll: rejected by controller: ${message}`, res.status, err.success ? err.data.error : "unknown");
}

/**
 * An enrollment nonce (`POST /v1/enroll/nonce`) for an Azure attested document, over the same
 * pinned-CA connection rules as enroll(). Errors as enroll()'s.
 */
export async function requestNonce(controllerUrl: string, opts: EnrollOptions = {}): Promise<EnrollNonce> {
  const url = new URL("/v1/enroll/nonce", controllerUrl);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const caPem = url.protocol === "https:" ? await pinnedCa(url, opts.caHash, timeoutMs) : undefined;
  const res = await post(url, "{}", caPem, timeoutMs);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = undefined;
  }
  if (res.status >= 200 && res.status < 300) {
    const parsed = EnrollNonce.safeParse(body);
    if (!parsed.success) throw new ControllerUnavailableError(`enroll: controller answered the nonce request with an unexpected body (${parsed.error.message})`);
    return parsed.data;
  }
  const err = ApiError.safeParse(body);
  const message = err.success ? err.data.message : `HTTP ${res.status}`;
  if (res.status >= 500 || res.status === 429) throw new ControllerUnavailableError(`enroll: controller cannot issue a nonce: ${message}`);
  throw new EnrollmentRejectedError(`enroll: nonce refused by controller: ${message}`, res.status, err.success ? err.data.error : "unknown");
}

async function pinnedCa(url: URL, caHash: string | undefined, timeoutMs: number): Promise<string> {
  if (caHash === undefined) throw new AgentError(`enroll: ${url.origin} is https: pass --ca-hash sha256:… (printed by \`weft keys create\`)`);
  try {
    return await resolvePinnedCa({ host: hostOf(url), port: portOf(url), caHash, timeoutMs });
  } catch (err) {
    if (err instanceof CaPinMismatchError) throw new ControllerIdentityError(`enroll: ${err.message}`, err.presented, err);
    throw new ControllerUnavailableError(`enroll: cannot reach controller at ${url.origin}`, err);
  }
}

function post(url: URL, body: string, caPem: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
  const options = {
    host: hostOf(url),
    port: portOf(url),
    path: url.pathname,
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
    // No pooled socket: each enrollment attempt is verified afresh.
    agent: false,
    timeout: timeoutMs,
  } as const;
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (err) => reject(new ControllerUnavailableError(`enroll: reading the answer from ${url.origin} failed`, err)));
    };
    // With `ca`, the pinned CA is the only trust anchor; host name verification stays on.
    const req = caPem === undefined ? httpRequest(options, onResponse) : httpsRequest({ ...options, ca: caPem }, onResponse);
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => {
      if (isTlsVerificationError(err)) {
        const code = (err as NodeJS.ErrnoException).code;
        const message =
          code === "ERR_TLS_CERT_ALTNAME_INVALID"
            ? `enroll: the controller's certificate is signed by the pinned CA but does not cover ${hostOf(url)}: add it to the controller's api.tls.sans, or use a name it covers (${err.message})`
            : `enroll: controller certificate does not match --ca-hash (${err.message}); check the hash from \`weft keys create\``;
        reject(new ControllerIdentityError(message, [], err));
        return;
      }
      reject(new ControllerUnavailableError(`enroll: cannot reach controller at ${url.origin}`, err));
    });
    req.end(body);
  });
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, "");
const portOf = (url: URL) => Number(url.port || (url.protocol === "https:" ? 443 : 80));
