/**
 * @weft/lab — builds, on one Linux machine, network namespaces that model an internet router,
 * three clouds (1:1 NAT gateways), an on-prem site (masquerade) and a controller, for the demo,
 * the end-to-end tests and the benchmarks. This file is the public surface; see README.md.
 */
export { labTopology, labWorkloads, topologyNamespaces, LAB_WORKLOAD_NAMESPACE, LAB_DEFAULT_MTU } from "./topology.js";
export type { Controller, Gateway, Host, Inet, LabWorkload, NatKind, Site, SiteName, Topology } from "./topology.js";
export { labNetwork, oneToOneHostRules, siteMtu, LAB_MTU } from "./network.js";
export { labSetLoss, labSetNat, labMovePublicAddress, flushConntrack, lossRules, LOSS_CHAIN } from "./conditions.js";
export type { AddressSpec, FirewallRule, LinkSpec, NamespaceSpec, RouteSpec, SysctlSpec } from "./network.js";
export { labUp } from "./up.js";
export type { LabUpResult } from "./up.js";
export { labDown } from "./down.js";
export type { LabDownOptions, LabDownResult } from "./down.js";
export { labStatus, agentStatePath, readOverlayAddress } from "./status.js";
export type { HostStatus } from "./status.js";
export { labExec, spawnInHost, labNode, nodeCgroup } from "./exec.js";
export { cgroup2Mount, hostCgroup, labCgroupRoot, inCgroup } from "./cgroups.js";
export type { LabExecOptions, LabExecResult } from "./exec.js";
export { labNodes, resolveHost } from "./hosts.js";
export type { LabNode, NodeKind } from "./hosts.js";
export { hostDir, hostPinDir, labDir, labPinRoot, statePath } from "./state.js";
export { startEchoServer, echoProbe } from "./probe.js";
export { controlPlanePids, freezeControlPlane, thawControlPlane, killControlPlane, labCutAgentsFromNats, startPingStream } from "./outage.js";
export type { ControlPlanePids, PingCount, PingStream } from "./outage.js";
export type { EchoResult, EchoServer } from "./probe.js";
export { resolveLabOptions } from "./options.js";
export type { LabLayout, LabOptions, ResolvedLabOptions } from "./options.js";
export type { LabLogger } from "./logger.js";
export {
  LabError,
  LabCommandError,
  LabConflictError,
  LabNotUpError,
  LabOptionsError,
  LabPermissionError,
  LabStateError,
  UnknownHostError,
} from "./errors.js";
export { LabCluster, interfaceNameFor, labPath, repoRoot, stopProcess, waitFor, CONTROLLER_API_PORT, CONTROLLER_NATS_PORT, WIREGUARD_PORT } from "./cluster.js";
export type { AgentHandle, ClusterOptions } from "./cluster.js";
export { LAB_CLOUDS, LAB_CLOUD_CREDENTIALS, CLOUD_API_PORT, METADATA_ADDRESS, cloudsDir, instanceIdFor, labFleet, labInstanceTags, LAB_GATEWAY_HOSTS, LAB_ONPREM_KEY_LABELS, LAB_ONPREM_KEY_SITE, onpremInventoryYaml, startLabClouds, labCloudAdmin, terminateLabInstance, moveLabInstanceAddress, type LabCloud, type RunningClouds } from "./clouds.js";
export { agentEntry, agentNodeFlags, checkoutAgentNodeFlags } from "./launcher.js";
