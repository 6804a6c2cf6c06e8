/**
 * ARM records → the inventory model. A VM's addresses live on its network interfaces and their
 * public IP resources, and its power state only in the instance view, so an Instance is a join of
 * four lists by resource id (compared case-insensitively: ARM echoes whatever casing a resource
 * was created with). Pure functions over the SDK's own types.
 */
import type { VirtualMachine } from "@azure/arm-compute";
import type { NetworkInterface, PublicIPAddress, VirtualNetwork } from "@azure/arm-network";
import type { Instance, InstanceState, Network } from "../model.js";

export interface ArmLists {
  /** virtualMachines.listAll. */
  vms: VirtualMachine[];
  /** virtualMachines.listAll with statusOnly=true; a VM missing here (the pass failed) is "unknown". */
  statuses: VirtualMachine[];
  /** A VM whose NIC is missing here (the list failed) has no addresses and network "". */
  nics: NetworkInterface[];
  /** A public IP missing here is left out of publicIps. */
  publicIps: PublicIPAddress[];
}

const key = (id: string | undefined) => (id ?? "").toLowerCase();

/** The VNet's resource id from a subnet's (…/virtualNetworks/{vnet}/subnets/{subnet}). */
export function vnetIdOfSubnet(subnetId: string): string {
  const i = subnetId.toLowerCase().lastIndexOf("/subnets/");
  return i < 0 ? subnetId : subnetId.slice(0, i);
}

/** Power state and provisioning state → the model's lifecycle. A VM being deleted is "terminated". */
export function azureState(vm: VirtualMachine | undefined, status: VirtualMachine | undefined): InstanceState {
  const codes = (status?.instanceView?.statuses ?? vm?.instanceView?.statuses ?? []).map((s) => (s.code ?? "").toLowerCase());
  const provisioning = (vm?.provisioningState ?? status?.provisioningState ?? codes.find((c) => c.startsWith("provisioningstate/"))?.slice(18) ?? "").toLowerCase();
  if (provisioning === "deleting" || codes.includes("provisioningstate/deleting")) return "terminated";
  const power = codes.find((c) => c.startsWith("powerstate/"))?.slice("powerstate/".length);
  switch (power) {
    case "running":
      return "running";
    case "starting":
      return "pending";
    case "stopping":
    case "deallocating":
      return "stopping";
    case "stopped":
    case "deallocated":
      return "stopped";
    default:
      return provisioning === "creating" ? "pending" : "unknown";
  }
}

export function joinInstances(subscriptionId: string, lists: ArmLists): Instance[] {
  const statusById = new Map(lists.statuses.map((s) => [key(s.id), s]));
  const nicById = new Map(lists.nics.map((n) => [key(n.id), n]));
  const pipById = new Map(lists.publicIps.map((p) => [key(p.id), p]));

  return lists.vms.map((vm) => {
    // The primary NIC first, then the rest in the VM's order; within a NIC the primary ip configuration first.
    const refs = [...(vm.networkProfile?.networkInterfaces ?? [])].sort((a, b) => Number(b.primary ?? false) - Number(a.primary ?? false));
    const nics = refs.map((r) => nicById.get(key(r.id))).filter((n): n is NetworkInterface => n !== undefined);
    const configs = nics.flatMap((n) => [...(n.ipConfigurations ?? [])].sort((a, b) => Number(b.primary ?? false) - Number(a.primary ?? false)));
    const privateIps = configs.map((c) => c.privateIPAddress).filter((ip): ip is string => !!ip);
    const publicIps = configs
      .map((c) => (c.publicIPAddress ? (pipById.get(key(c.publicIPAddress.id))?.ipAddress ?? c.publicIPAddress.ipAddress) : undefined))
      .filter((ip): ip is string => !!ip);
    const subnet = configs.find((c) => c.subnet?.id)?.subnet?.id;
    const status = statusById.get(key(vm.id));
    const zone = vm.zones?.[0];
    return {
      provider: "azure",
      account: subscriptionId,
      region: vm.location,
      ...(zone ? { zone } : {}),
      network: subnet ? vnetIdOfSubnet(subnet) : "",
      ...(subnet ? { subnet } : {}),
      id: vm.vmId ?? status?.vmId ?? vm.id ?? "",
      name: vm.name ?? "",
      privateIps: [...new Set(privateIps)],
      publicIps: [...new Set(publicIps)],
      tags: { ...(vm.tags ?? {}) },
      state: azureState(vm, status),
    } satisfies Instance;
  });
}

export function toNetworks(subscriptionId: string, vnets: VirtualNetwork[]): Network[] {
  return vnets
    .filter((v) => v.id)
    .map((v) => ({
      provider: "azure",
      account: subscriptionId,
      ...(v.location ? { region: v.location } : {}),
      id: v.id!,
      ...(v.name ? { name: v.name } : {}),
      cidrs: [...(v.addressSpace?.addressPrefixes ?? [])],
      subnets: (v.subnets ?? []).flatMap((s) => {
        const cidr = s.addressPrefix ?? s.addressPrefixes?.[0];
        return s.id && cidr ? [{ id: s.id, cidr, ...(s.name ? { name: s.name } : {}) }] : [];
      }),
    }));
}
