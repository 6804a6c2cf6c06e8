/**
 * The simulated fleet of one cloud: instances (and networks) a test or the lab adds, stops,
 * terminates and retags while the SDKs read them. Each cloud's server renders these records in
 * its own wire format. Pure in-memory state; every change bumps a version.
 */

export type SimState = "pending" | "running" | "stopping" | "stopped" | "terminated";

export interface SimInstance {
  /** The cloud's own id (i-…, a VM name + vmId, a numeric GCE id); unique per simulator. */
  id: string;
  name: string;
  /** AWS region / Azure location / GCP zone's region. */
  region: string;
  zone?: string;
  /** Id of the network (VPC id, VNet name, GCE network name) and subnet it sits in. */
  network: string;
  subnet?: string;
  privateIp: string;
  publicIp?: string;
  tags: Record<string, string>;
  state: SimState;
  /** When the instance was launched (ISO). */
  launchedAt: string;
  /** Cloud-specific extras (instance type, VM size, machine type…). */
  extra?: Record<string, string>;
}

export interface SimSubnet {
  id: string;
  name?: string;
  cidr: string;
  zone?: string;
}

export interface SimNetwork {
  id: string;
  name: string;
  region: string;
  cidrs: string[];
  subnets: SimSubnet[];
}

export class SimStore {
  readonly instances = new Map<string, SimInstance>();
  readonly networks = new Map<string, SimNetwork>();
  version = 0;
  /**
   * Signed identity documents and tokens are issued as if this many seconds ago (Azure
   * `timeStamp`, GCP `iat`/`exp`): a test makes them expired without waiting.
   */
  identityAgeSeconds = 0;

  addInstance(i: Omit<SimInstance, "launchedAt" | "state"> & Partial<Pick<SimInstance, "state" | "launchedAt">>): SimInstance {
    if (this.instances.has(i.id)) throw new SimError(409, `instance ${i.id} exists`);
    const full: SimInstance = { state: "running", launchedAt: new Date().toISOString(), ...i };
    this.instances.set(i.id, full);
    this.version++;
    return full;
  }

  removeNetwork(id: string): void {
    if (!this.networks.delete(id)) throw new SimError(404, `no network ${id}`);
    this.version++;
  }

  addNetwork(n: SimNetwork): SimNetwork {
    this.networks.set(n.id, n);
    this.version++;
    return n;
  }

  instance(id: string): SimInstance {
    const i = this.instances.get(id);
    if (!i) throw new SimError(404, `no instance ${id}`);
    return i;
  }

  /** A stopped instance that starts is launched anew (EC2's launchTime and pendingTime move). */
  setState(id: string, state: SimState): SimInstance {
    const i = this.instance(id);
    if (state === "running" && i.state !== "running") i.launchedAt = new Date().toISOString();
    i.state = state;
    this.version++;
    return i;
  }

  /** Replaces the tags (set) or merges them (patch; a null value removes the key). */
  retag(id: string, tags: Record<string, string | null>, mode: "set" | "patch" = "patch"): SimInstance {
    const i = this.instance(id);
    const next: Record<string, string> = mode === "set" ? {} : { ...i.tags };
    for (const [k, v] of Object.entries(tags)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    i.tags = next;
    this.version++;
    return i;
  }

  /**
   * Gives the instance another public address (a stopped and started VM gets a new one on every
   * cloud unless it holds a static address); undefined takes it away.
   */
  setPublicIp(id: string, publicIp: string | undefined): SimInstance {
    const i = this.instance(id);
    if (publicIp !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(publicIp)) throw new SimError(400, `publicIp must be an IPv4 address, got ${JSON.stringify(publicIp)}`);
    for (const other of this.instances.values()) {
      if (other.id !== id && publicIp !== undefined && other.publicIp === publicIp) throw new SimError(409, `${publicIp} is the public address of ${other.id}`);
    }
    if (publicIp === undefined) delete i.publicIp;
    else i.publicIp = publicIp;
    this.version++;
    return i;
  }

  /** Gone from the API entirely (after termination, clouds stop listing an instance). */
  remove(id: string): void {
    if (!this.instances.delete(id)) throw new SimError(404, `no instance ${id}`);
    this.version++;
  }

  /** The instance with this private (or public) address: how a metadata endpoint knows who asks. */
  byAddress(address: string): SimInstance | undefined {
    for (const i of this.instances.values()) if (i.privateIp === address || i.publicIp === address) return i;
    return undefined;
  }

  /** Sorted by id: stable pages. */
  list(): SimInstance[] {
    return [...this.instances.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}

export class SimError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "SimError";
  }
}
