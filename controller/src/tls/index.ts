/**
 * controller/tls — HTTPS for the REST API without any outside PKI, as kubeadm
 * does it: the controller makes its own CA at first start (ECDSA P-256, ten
 * years, kept in `<stateDir>/tls/`, key mode 0600) and signs the API's server
 * certificate with it; agents and admin tools pin the CA by the SHA-256 of its
 * SubjectPublicKeyInfo (`--ca-hash sha256:…`). The server certificate is
 * reissued when the names it needs change or it nears expiry; the CA never is.
 */
export { ApiTls, TlsStateError, TLS_DIR, CA_CERT_FILE, CA_KEY_FILE, CA_HASH_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, type ApiTlsOptions } from "./store.js";
export { apiUrls, hostIpv4Addresses, requiredSans } from "./sans.js";
