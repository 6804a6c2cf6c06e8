/**
 * How the simulated fleet looks through ARM: one SimInstance is a virtual machine, its network
 * interface and (when it has one) its public IP address; one SimNetwork is a virtual network with
 * its subnets embedded. Body shapes follow the API owners' example files in
 * Azure/azure-rest-api-specs (VirtualMachine_ListBySubscription_ByLocation.json,
 * VirtualMachine_Get_InstanceView.json, NetworkInterfaceListAll.json, PublicIpAddressListAll.json,
 * VirtualNetworkListAll.json); no field here is made up.
 *
 * Naming, in ARM terms: SimInstance.id is the VM's vmId, .name its resource name, .network the
 * VNet's name, .subnet the subnet's name; extra.resourceGroup / extra.vmSize / extra.powerState
 * ("deallocated" for a stopped VM that released its host) override the defaults. VNets live in
 * the simulator's resource group.
 */
import { createHash } from "node:crypto";
import type { SimInstance, SimNetwork, SimStore, SimSubnet } from "../store.js";

export interface ArmScope {
  subscriptionId: string;
  /** Default resource group for VMs, NICs, public IPs and every VNet. */
  resourceGroup: string;
}

const rgPath = (s: ArmScope, rg: string) => `/subscriptions/${s.subscriptionId}/resourceGroups/${rg}`;
export const resourceGroupOf = (s: ArmScope, i: SimInstance) => i.extra?.resourceGroup ?? s.resourceGroup;

export function vmResourceId(s: ArmScope, i: SimInstance): string {
  return `${rgPath(s, resourceGroupOf(s, i))}/providers/Microsoft.Compute/virtualMachines/${i.name}`;
}
export function nicResourceId(s: ArmScope, i: SimInstance): string {
  return `${rgPath(s, resourceGroupOf(s, i))}/providers/Microsoft.Network/networkInterfaces/${i.name}-nic`;
}
export function publicIpResourceId(s: ArmScope, i: SimInstance): string {
  return `${rgPath(s, resourceGroupOf(s, i))}/providers/Microsoft.Network/publicIPAddresses/${i.name}-ip`;
}
export function vnetResourceId(s: ArmScope, vnetName: string): string {
  return `${rgPath(s, s.resourceGroup)}/providers/Microsoft.Network/virtualNetworks/${vnetName}`;
}

/** The store's subnet an instance sits in: the one it names (by id or name), else its VNet's first. */
function simSubnetOf(store: SimStore, i: SimInstance): SimSubnet | undefined {
  const subnets = store.networks.get(i.network)?.subnets ?? [];
  return i.subnet ? subnets.find((s) => s.id === i.subnet || s.name === i.subnet) : subnets[0];
}

/** The ARM name of an instance's subnet ("default" when neither the instance nor its VNet says). */
export function subnetNameOf(store: SimStore, i: SimInstance): string {
  const s = simSubnetOf(store, i);
  return s ? (s.name ?? s.id) : (i.subnet ?? "default");
}

/** The subnet's CIDR when the store knows the VNet. */
export function subnetCidrOf(store: SimStore, i: SimInstance): string | undefined {
  return simSubnetOf(store, i)?.cidr;
}

/** A stable MAC per instance, in the dash-separated form ARM uses. */
export function macOf(i: SimInstance): string {
  const hex = createHash("sha256").update(i.id).digest("hex").slice(0, 6).toUpperCase();
  return `00-0D-3A-${hex.slice(0, 2)}-${hex.slice(2, 4)}-${hex.slice(4, 6)}`;
}

/** provisioningState of the VM resource: a terminated instance is one being deleted. */
function provisioningState(i: SimInstance): string {
  if (i.state === "pending") return "Creating";
  if (i.state === "terminated") return "Deleting";
  return "Succeeded";
}

/** The instance view's PowerState/… code. */
export function powerStateCode(i: SimInstance): string {
  switch (i.state) {
    case "pending":
      return "PowerState/starting";
    case "running":
      return "PowerState/running";
    case "stopping":
      return "PowerState/stopping";
    case "stopped":
      return i.extra?.powerState === "deallocated" ? "PowerState/deallocated" : "PowerState/stopped";
    case "terminated":
      return "PowerState/deallocating";
  }
}

const DISPLAY: Record<string, string> = {
  "PowerState/starting": "VM starting",
  "PowerState/running": "VM running",
  "PowerState/stopping": "VM stopping",
  "PowerState/stopped": "VM stopped",
  "PowerState/deallocating": "VM deallocating",
  "PowerState/deallocated": "VM deallocated",
};

function instanceViewStatuses(i: SimInstance): unknown[] {
  const prov = provisioningState(i);
  const power = powerStateCode(i);
  return [
    {
      code: `ProvisioningState/${prov.toLowerCase()}`,
      level: "Info",
      displayStatus: prov === "Succeeded" ? "Provisioning succeeded" : `${prov}`,
      time: i.launchedAt,
    },
    { code: power, level: "Info", displayStatus: DISPLAY[power] },
  ];
}

/** virtualMachines.listAll item (model view: no instance view, as ARM returns it). */
export function renderVm(s: ArmScope, i: SimInstance): unknown {
  return {
    properties: {
      vmId: i.id,
      hardwareProfile: { vmSize: i.extra?.vmSize ?? "Standard_B2s" },
      osProfile: { computerName: i.name, adminUsername: "weft" },
      networkProfile: { networkInterfaces: [{ id: nicResourceId(s, i), properties: { primary: true } }] },
      provisioningState: provisioningState(i),
      timeCreated: i.launchedAt,
    },
    type: "Microsoft.Compute/virtualMachines",
    location: i.region,
    ...(i.zone ? { zones: [i.zone] } : {}),
    tags: { ...i.tags },
    id: vmResourceId(s, i),
    name: i.name,
  };
}

/** virtualMachines.listAll?statusOnly=true item: run-time status only, no tags or profiles. */
export function renderVmStatus(s: ArmScope, i: SimInstance): unknown {
  return {
    properties: { vmId: i.id, instanceView: { statuses: instanceViewStatuses(i) } },
    type: "Microsoft.Compute/virtualMachines",
    location: i.region,
    id: vmResourceId(s, i),
    name: i.name,
  };
}

export function renderNic(s: ArmScope, store: SimStore, i: SimInstance): unknown {
  const nicId = nicResourceId(s, i);
  return {
    name: `${i.name}-nic`,
    id: nicId,
    location: i.region,
    properties: {
      provisioningState: "Succeeded",
      ipConfigurations: [
        {
          name: "ipconfig1",
          id: `${nicId}/ipConfigurations/ipconfig1`,
          properties: {
            provisioningState: "Succeeded",
            privateIPAddress: i.privateIp,
            privateIPAllocationMethod: "Dynamic",
            ...(i.publicIp ? { publicIPAddress: { id: publicIpResourceId(s, i) } } : {}),
            subnet: { id: `${vnetResourceId(s, i.network)}/subnets/${subnetNameOf(store, i)}` },
            primary: true,
            privateIPAddressVersion: "IPv4",
          },
        },
      ],
      dnsSettings: { dnsServers: [], appliedDnsServers: [] },
      macAddress: macOf(i),
      enableAcceleratedNetworking: false,
      enableIPForwarding: false,
      primary: true,
      virtualMachine: { id: vmResourceId(s, i) },
    },
    type: "Microsoft.Network/networkInterfaces",
  };
}

export function renderPublicIp(s: ArmScope, i: SimInstance): unknown {
  return {
    name: `${i.name}-ip`,
    id: publicIpResourceId(s, i),
    location: i.region,
    properties: {
      provisioningState: "Succeeded",
      ipAddress: i.publicIp,
      publicIPAddressVersion: "IPv4",
      publicIPAllocationMethod: "Static",
      idleTimeoutInMinutes: 4,
      ipConfiguration: { id: `${nicResourceId(s, i)}/ipConfigurations/ipconfig1` },
    },
    type: "Microsoft.Network/publicIPAddresses",
  };
}

export function renderVnet(s: ArmScope, n: SimNetwork): unknown {
  const id = vnetResourceId(s, n.id);
  return {
    id,
    name: n.id,
    type: "Microsoft.Network/virtualNetworks",
    location: n.region,
    properties: {
      addressSpace: { addressPrefixes: [...n.cidrs] },
      dhcpOptions: { dnsServers: [] },
      subnets: n.subnets.map((sub) => ({
        id: `${id}/subnets/${sub.name ?? sub.id}`,
        name: sub.name ?? sub.id,
        properties: { addressPrefix: sub.cidr, provisioningState: "Succeeded" },
      })),
      virtualNetworkPeerings: [],
      provisioningState: "Succeeded",
    },
  };
}
