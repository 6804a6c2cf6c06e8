/**
 * Services in KV, the owner of `weft-services`: one key `<namespace>.<name>` per service,
 * written only after the whole document validated (the API parses it with the Service schema
 * before the handler runs; the VIP is checked here), with its virtual IP allocated once and kept
 * across updates (VipAllocator, compare-and-set claims in weft-ipam). Deleting a service releases
 * its VIP. Also the read side the API shows: the list, one service with its backends' health and
 * statistics (views.ts), and what one node gets (the publisher's compiler).
 */
import { nodeName, serviceKey, serviceRef, type NodeServicesRecord, type Service, type ServiceRecord, type ServiceView } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError, ValidationError } from "../errors.js";
import { aggregateStats, type ServiceHealth } from "./health.js";
import type { NodeServicesPublisher, ServiceStore } from "./publisher.js";
import { serviceView } from "./views.js";
import type { VipAllocator } from "./vips.js";

export interface ServiceCatalogDeps {
  store: ServiceStore;
  vips: VipAllocator;
  publisher: Pick<NodeServicesPublisher, "compiler" | "nodes" | "flush">;
  health: Pick<ServiceHealth, "stateOf" | "stats">;
  /** A node by id or name (throws NotFoundError). */
  resolveNode: (idOrName: string) => Promise<{ nodeId: string }>;
  zone: string;
  log: Logger;
}

const notFound = (namespace: string, name: string) =>
  new NotFoundError(`no service ${JSON.stringify(`${namespace.slice(0, 64)}/${name.slice(0, 64)}`)}; list services with \`weft service list\``);

export class ServiceCatalog {
  constructor(private readonly d: ServiceCatalogDeps) {}

  /** Create or replace `namespace/name` with `spec` (already parsed by the API); the document must name the same service. */
  async apply(namespace: string, name: string, spec: Service): Promise<ServiceRecord> {
    if (spec.namespace !== namespace || spec.name !== name) {
      throw new ValidationError(`service is invalid: ${spec.namespace}/${spec.name} does not match the path ${JSON.stringify(`${namespace.slice(0, 64)}/${name.slice(0, 64)}`)}`, {
        details: [{ path: spec.namespace !== namespace ? "namespace" : "name", message: "must match the path" }],
      });
    }
    const key = serviceKey(spec);
    const ref = serviceRef(spec);
    const existing = (await this.d.store.get(key))?.value.vip;
    // The VIP: the requested one, else the one the service has, else a new one.
    let target: string;
    if (spec.vip !== undefined) {
      if (spec.vip !== existing) await this.d.vips.allocate(ref, spec.vip);
      target = spec.vip;
    } else {
      target = existing ?? (await this.d.vips.allocate(ref));
    }
    const claimed = target !== existing;
    const now = new Date().toISOString();
    let written: ServiceRecord | undefined;
    try {
      written = (await this.d.store.change(key, (current) => ({ version: 1, spec, vip: spec.vip ?? current?.vip ?? target, createdAt: current?.createdAt ?? now, updatedAt: now }))).value;
    } finally {
      // Another apply of the same service won (or the write failed): give back what this one claimed.
      if (claimed && written?.vip !== target) await this.d.vips.release(ref, target).catch(() => undefined);
    }
    if (!written) throw new Error(`service ${ref}: nothing written`);
    if (existing !== undefined && existing !== written.vip) await this.d.vips.release(ref, existing);
    this.d.log.info({ service: ref, vip: written.vip, algorithm: spec.algorithm }, "service applied");
    return written;
  }

  async get(namespace: string, name: string): Promise<ServiceRecord> {
    const ok = nodeName.safeParse(namespace).success && nodeName.safeParse(name).success;
    const got = ok ? await this.d.store.get(serviceKey({ namespace, name })) : undefined;
    if (!got) throw notFound(namespace, name);
    return got.value;
  }

  async list(): Promise<ServiceRecord[]> {
    const all = await this.d.store.list(undefined, (key, err) => this.d.log.warn({ service: key, err }, "skipping unreadable service"));
    return all.map((r) => r.value).sort((a, b) => serviceRef(a.spec).localeCompare(serviceRef(b.spec)));
  }

  /** Deletes the service, releases its VIP, and returns what it was. */
  async delete(namespace: string, name: string): Promise<ServiceRecord> {
    const record = await this.get(namespace, name);
    await this.d.store.delete(serviceKey(record.spec));
    await this.d.vips.release(serviceRef(record.spec), record.vip);
    this.d.log.info({ service: serviceRef(record.spec), vip: record.vip }, "service deleted");
    return record;
  }

  /** One service with its backends: locality, weight, share, health, and what clients reported. */
  async view(namespace: string, name: string): Promise<ServiceView> {
    return this.#view(await this.get(namespace, name));
  }

  /** Every service with its backends. */
  async views(): Promise<ServiceView[]> {
    return (await this.list()).map((r) => this.#view(r));
  }

  /** What the node `idOrName` gets in weft-node-services (the publisher's compilation of the current snapshot). */
  async forNode(idOrName: string): Promise<NodeServicesRecord> {
    const { nodeId } = await this.d.resolveNode(idOrName);
    const node = this.d.publisher.nodes().find((n) => n.nodeId === nodeId);
    if (!node) throw new NotFoundError(`node ${nodeId} is not known to the services publisher yet; retry`);
    return { ...this.d.publisher.compiler().compile(node), compiledAt: new Date().toISOString() };
  }

  #view(record: ServiceRecord): ServiceView {
    const ref = serviceRef(record.spec);
    const compiler = this.d.publisher.compiler();
    const names = new Map(this.d.publisher.nodes().map((n) => [n.nodeId, n.name]));
    const reports = this.d.health.stats();
    return serviceView({
      record,
      backends: compiler.backends().get(ref) ?? [],
      zone: this.d.zone,
      health: (b) => this.d.health.stateOf(ref, b.address, b.nodeId, record.spec.healthCheck !== undefined),
      stats: aggregateStats(reports, (id) => names.get(id) ?? id),
      reports,
    });
  }
}

