/**
 * controller/mesh — Weft and Istio, both ways, as pure functions: export (WorkloadEntry per node
 * and workload, ServiceEntry per service, AuthorizationPolicy equivalent to the L3/L4 policy) and
 * import (AuthorizationPolicy → Weft policy, refusing with the field named what L3/L4 cannot say).
 */
export { exportIstio, meshServices, validK8sLabel, spiffeParts, MeshExportError, SERVICE_ACCOUNT_LABEL, type MeshExport, type MeshExportInput, type MeshService, type K8sObject } from "./istio-export.js";
export { importIstio, portRanges, weftName, MeshImportError, type MeshImport, type MeshImportOptions } from "./istio-import.js";
