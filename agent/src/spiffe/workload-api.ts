/**
 * The SPIFFE Workload API server: gRPC (`SpiffeWorkloadAPI`) over a unix socket that every local
 * process and workload can open (mode 0666: attestation, not file access, decides).
 *
 * Each connection is attested once, when it is accepted and before a byte is read: the kernel's
 * peer credentials and network namespace (peercred.ts) → a caller (attest.ts). The connection is
 * then handed to the grpc-js server of that caller (one per workload, one for the host, one per
 * refusal), whose handlers know whom they serve: the caller never names itself, and a request for
 * any other identity is refused. Every call needs the `workload.spiffe.io: true` header.
 *
 * - FetchX509SVID / FetchX509Bundles stream the caller's SVID and the bundle, and again on every
 *   rotation or bundle change, on the same stream (no reconnect).
 * - FetchJWTSVID signs through the controller; FetchJWTBundles streams the JWKS;
 *   ValidateJWTSVID checks a token against the bundle.
 * - A caller with no identity gets PERMISSION_DENIED and nothing else.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { attest, callerKey, type AttestContext, type Caller } from "./attest.js";
import type { BundleSource } from "./bundle-watch.js";
import { JwtSvidInvalidError, validateJwtSvid, type JwtSvids } from "./jwt.js";
import { peerCredentials } from "./peercred.js";
import { workloadApiService } from "./proto.js";
import type { X509SvidSource } from "./svids.js";

export interface WorkloadApiOptions {
  socketPath: string;
  /** Host namespace, host uids and the workloads' namespaces, read at each connection. */
  context: () => AttestContext;
  /** The SPIFFE ID a caller holds now (undefined: none yet, or none at all). */
  identityOf: (caller: Caller) => string | undefined;
  svids: X509SvidSource;
  bundle: BundleSource;
  jwt: JwtSvids;
  log: Logger;
}

interface Served {
  server: grpc.Server;
  injector: { injectConnection(c: Socket): void; destroy(): void };
}

const SECURITY_HEADER = "workload.spiffe.io";

type Status = { code: grpc.status; details: string };

export class WorkloadApi {
  #net: NetServer | undefined;
  readonly #served = new Map<string, Served>();
  readonly #sockets = new Set<Socket>();

  constructor(private readonly o: WorkloadApiOptions) {}

  async listen(): Promise<void> {
    await mkdir(dirname(this.o.socketPath), { recursive: true, mode: 0o755 });
    await rm(this.o.socketPath, { force: true });
    const server = createServer({ pauseOnConnect: true }, (socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#net = server;
    await chmod(this.o.socketPath, 0o666);
    this.o.log.info({ socket: this.o.socketPath }, "serving the SPIFFE Workload API");
  }

  async close(): Promise<void> {
    const server = this.#net;
    this.#net = undefined;
    for (const s of this.#served.values()) {
      s.injector.destroy();
      s.server.forceShutdown();
    }
    this.#served.clear();
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.o.socketPath, { force: true });
  }

  #accept(socket: Socket): void {
    let caller: Caller;
    let peer: { pid: number; uid: number; via: string } | undefined;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== "number" || fd < 0) throw new Error("the connection has no file descriptor");
      const creds = peerCredentials(fd);
      peer = { pid: creds.pid, uid: creds.uid, via: creds.via };
      caller = attest(creds, this.o.context());
    } catch (err) {
      caller = { kind: "none", reason: "the caller's credentials could not be read" };
      this.o.log.warn({ err }, "cannot read a Workload API caller's credentials");
    }
    this.o.log.debug({ ...peer, caller: callerKey(caller) }, "Workload API connection attested");
    if (caller.kind === "none") this.o.log.info({ ...peer, reason: caller.reason }, "Workload API caller gets no identity");
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    this.#servedFor(caller).injector.injectConnection(socket);
    socket.resume();
  }

  #servedFor(caller: Caller): Served {
    const key = callerKey(caller);
    let served = this.#served.get(key);
    if (!served) {
      const server = new grpc.Server();
      server.addService(workloadApiService(), this.#handlers(caller) as unknown as grpc.UntypedServiceImplementation);
      served = { server, injector: server.createConnectionInjector(grpc.ServerCredentials.createInsecure()) };
      this.#served.set(key, served);
    }
    return served;
  }

  /** The SPIFFE ID `caller` may be served, or the status that refuses it. */
  #identity(caller: Caller, call: { metadata: grpc.Metadata }): string | Status {
    if (call.metadata.get(SECURITY_HEADER)[0] !== "true") return { code: grpc.status.INVALID_ARGUMENT, details: "security header missing from request" };
    if (caller.kind === "none") return { code: grpc.status.PERMISSION_DENIED, details: `no identity issued: ${caller.reason}` };
    const id = this.o.identityOf(caller);
    if (!id) return { code: grpc.status.PERMISSION_DENIED, details: `no identity issued: ${caller.kind === "host" ? "this node has no identity" : `workload ${caller.workload} has no identity recorded yet`}` };
    return id;
  }

  #handlers(caller: Caller) {
    const api = this.o;
    const bundleDer = () => Buffer.concat((api.bundle.current?.x509Authorities ?? []).map(pemToDer));
    const tdId = () => `spiffe://${api.bundle.current?.trustDomain ?? ""}`;

    /** Keeps a server stream fed: `message()` is sent now and after every change, when it differs from the last one sent. */
    const stream = (call: grpc.ServerWritableStream<unknown, unknown>, message: () => { fingerprint: string; body: unknown } | Status | undefined) => {
      let last = "";
      let done = false;
      const push = () => {
        if (done) return;
        const next = message();
        if (next === undefined) return; // not ready yet: the next change sends it
        if ("code" in next) {
          finish();
          call.emit("error", next);
          return;
        }
        if (next.fingerprint === last) return;
        last = next.fingerprint;
        call.write(next.body);
      };
      const offSvids = api.svids.onChange(push);
      const offBundle = api.bundle.onChange(push);
      const finish = () => {
        done = true;
        offSvids();
        offBundle();
      };
      call.on("cancelled", finish);
      call.on("close", finish);
      call.on("error", finish);
      push();
    };

    return {
      FetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const first = this.#identity(caller, call);
        if (typeof first !== "string") return call.emit("error", first);
        stream(call, () => {
          const id = this.#identity(caller, call);
          if (typeof id !== "string") return id;
          const svid = api.svids.get(id);
          const bundle = api.bundle.current;
          if (!svid || !bundle) return undefined;
          return {
            fingerprint: `${svid.serial}/${bundle.sequence}`,
            body: { svids: [{ spiffe_id: id, x509_svid: svid.certDer, x509_svid_key: svid.keyDer, bundle: bundleDer(), hint: "" }], crl: [], federated_bundles: {} },
          };
        });
      },

      FetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const first = this.#identity(caller, call);
        if (typeof first !== "string") return call.emit("error", first);
        stream(call, () => {
          const bundle = api.bundle.current;
          if (!bundle) return undefined;
          return { fingerprint: String(bundle.sequence), body: { crl: [], bundles: { [tdId()]: bundleDer() } } };
        });
      },

      FetchJWTBundles: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const first = this.#identity(caller, call);
        if (typeof first !== "string") return call.emit("error", first);
        stream(call, () => {
          const bundle = api.bundle.current;
          if (!bundle) return undefined;
          return { fingerprint: String(bundle.sequence), body: { bundles: { [tdId()]: Buffer.from(JSON.stringify({ keys: bundle.jwtAuthorities })) } } };
        });
      },

      FetchJWTSVID: (call: grpc.ServerUnaryCall<{ audience?: string[]; spiffe_id?: string }, unknown>, done: grpc.sendUnaryData<unknown>) => {
        const id = this.#identity(caller, call);
        if (typeof id !== "string") return done(id);
        const want = call.request.spiffe_id ?? "";
        if (want !== "" && want !== id) return done({ code: grpc.status.PERMISSION_DENIED, details: `no identity issued: this caller holds ${id}, not ${want}` });
        const audience = (call.request.audience ?? []).filter((a) => a !== "");
        if (audience.length === 0) return done({ code: grpc.status.INVALID_ARGUMENT, details: "audience must be specified" });
        if (audience.length > 16 || audience.some((a) => a.length > 256)) return done({ code: grpc.status.INVALID_ARGUMENT, details: "at most 16 audiences of at most 256 characters" });
        api.jwt.fetch(id, audience).then(
          (token) => done(null, { svids: [{ spiffe_id: id, svid: token, hint: "" }] }),
          (err: unknown) => {
            api.log.warn({ err, spiffeId: id }, "cannot get a JWT-SVID signed");
            done({ code: grpc.status.UNAVAILABLE, details: "cannot get a JWT-SVID from the controller now; retry" });
          },
        );
      },

      ValidateJWTSVID: (call: grpc.ServerUnaryCall<{ audience?: string; svid?: string }, unknown>, done: grpc.sendUnaryData<unknown>) => {
        const id = this.#identity(caller, call);
        if (typeof id !== "string") return done(id);
        const { audience = "", svid = "" } = call.request;
        if (audience === "") return done({ code: grpc.status.INVALID_ARGUMENT, details: "audience must be specified" });
        if (svid === "") return done({ code: grpc.status.INVALID_ARGUMENT, details: "svid must be specified" });
        validateJwtSvid(api.bundle, svid, audience).then(
          ({ spiffeId, claims }) => done(null, { spiffe_id: spiffeId, claims: toStruct(claims as Record<string, unknown>) }),
          (err: unknown) => done({ code: grpc.status.INVALID_ARGUMENT, details: err instanceof JwtSvidInvalidError ? err.message : "the JWT-SVID does not validate" }),
        );
      },
    };
  }
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, ""), "base64");
}

/** A JSON object as a google.protobuf.Struct (field names as proto-loader keeps them). */
export function toStruct(obj: Record<string, unknown>): { fields: Record<string, unknown> } {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toValue(v)])) };
}

function toValue(v: unknown): unknown {
  if (v === null || v === undefined) return { null_value: "NULL_VALUE" };
  if (typeof v === "number") return { number_value: v };
  if (typeof v === "string") return { string_value: v };
  if (typeof v === "boolean") return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(toValue) } };
  if (typeof v === "object") return { struct_value: toStruct(v as Record<string, unknown>) };
  return { string_value: String(v) };
}
