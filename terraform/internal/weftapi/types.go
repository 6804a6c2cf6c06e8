package weftapi

// The controller's request and response bodies, as the provider uses them. Field names are the
// JSON names of protocol/src/messages.ts, protocol/src/policy.ts and protocol/src/inventory.ts;
// the contract test (internal/contract) checks every field against `GET /openapi.json`.
// Pointers and nil maps stand for fields the controller may leave out.

// InstanceSelector says which inventory instances a join key or enrollment policy admits.
type InstanceSelector struct {
	Provider string             `json:"provider,omitempty"`
	Account  string             `json:"account,omitempty"`
	Region   string             `json:"region,omitempty"`
	Network  string             `json:"network,omitempty"`
	Tags     *map[string]string `json:"tags,omitempty"`
}

// EnrollmentSelector is an enrollment policy's selector: the same as InstanceSelector, but the
// controller requires the provider, so it is always sent.
type EnrollmentSelector struct {
	Provider string             `json:"provider"`
	Account  string             `json:"account,omitempty"`
	Region   string             `json:"region,omitempty"`
	Network  string             `json:"network,omitempty"`
	Tags     *map[string]string `json:"tags,omitempty"`
}

// JoinKeyCreateRequest is the body of POST /v1/keys.
type JoinKeyCreateRequest struct {
	Description      *string           `json:"description,omitempty"`
	Reusable         bool              `json:"reusable"`
	TTLSeconds       int64             `json:"ttlSeconds"`
	Labels           map[string]string `json:"labels"`
	Site             *string           `json:"site,omitempty"`
	InstanceSelector *InstanceSelector `json:"instanceSelector,omitempty"`
}

// JoinKeyInfo is a join key as listed: never its secret.
type JoinKeyInfo struct {
	ID               string            `json:"id"`
	Description      *string           `json:"description,omitempty"`
	Reusable         bool              `json:"reusable"`
	Labels           map[string]string `json:"labels"`
	Site             *string           `json:"site,omitempty"`
	InstanceSelector *InstanceSelector `json:"instanceSelector,omitempty"`
	CreatedAt        string            `json:"createdAt"`
	ExpiresAt        string            `json:"expiresAt"`
	RevokedAt        *string           `json:"revokedAt,omitempty"`
	Uses             int64             `json:"uses"`
	// State is active, expired, revoked or used.
	State string `json:"state"`
}

// JoinKeyCreated is the answer to POST /v1/keys: the only time the secret is shown.
type JoinKeyCreated struct {
	JoinKeyInfo
	Key        string          `json:"key"`
	Controller *ControllerInfo `json:"controller,omitempty"`
}

// ControllerInfo tells an agent how to reach the controller with a new key.
type ControllerInfo struct {
	CAHash string   `json:"caHash"`
	URLs   []string `json:"urls,omitempty"`
}

// EnrollmentPolicy admits inventory instances without a join key (PUT /v1/enrollment-policies/{name}).
type EnrollmentPolicy struct {
	Name        string             `json:"name"`
	Description *string            `json:"description,omitempty"`
	Selector    EnrollmentSelector `json:"selector"`
	Site        *string            `json:"site,omitempty"`
	Labels      map[string]string  `json:"labels"`
}

// Policy is one policy document (PUT /v1/policies/{name}).
type Policy struct {
	Version     int64   `json:"version,omitempty"`
	Name        string  `json:"name"`
	Description *string `json:"description,omitempty"`
	Rules       []Rule  `json:"rules"`
}

// Rule allows or denies traffic from sources to destinations, optionally on some ports.
type Rule struct {
	Action string     `json:"action"`
	From   []Selector `json:"from"`
	To     []Selector `json:"to"`
	Ports  []PortSpec `json:"ports,omitempty"`
}

// Selector is exactly one of identity, namespace (with serviceAccount), labels or cidr.
type Selector struct {
	Identity       *string           `json:"identity,omitempty"`
	Namespace      *string           `json:"namespace,omitempty"`
	ServiceAccount *string           `json:"serviceAccount,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	CIDR           *string           `json:"cidr,omitempty"`
}

// PortSpec is a protocol with an optional port or port range.
type PortSpec struct {
	Protocol string `json:"protocol"`
	Port     *int64 `json:"port,omitempty"`
	EndPort  *int64 `json:"endPort,omitempty"`
}

// Identity is a SPIFFE ID and the number the datapath uses for it.
type Identity struct {
	ID       int64  `json:"id"`
	SpiffeID string `json:"spiffeId"`
}

// Endpoints are a node's candidate WireGuard addresses.
type Endpoints struct {
	Private *string `json:"private,omitempty"`
	Public  *string `json:"public,omitempty"`
}

// NodeInstance is the cloud instance a node proved it runs on.
type NodeInstance struct {
	Provider string `json:"provider"`
	Account  string `json:"account"`
	ID       string `json:"id"`
}

// Node is an enrolled node with its liveness (GET /v1/nodes/{id}).
type Node struct {
	NodeID string `json:"nodeId"`
	Name   string `json:"name"`
	Site   string `json:"site"`
	// SiteSource says what vouched for Site: join-key, enrollment-policy, network or request
	// (absent on nodes enrolled before sites were bound).
	SiteSource         *string           `json:"siteSource,omitempty"`
	WireguardPublicKey string            `json:"wireguardPublicKey"`
	OverlayAddress     string            `json:"overlayAddress"`
	Endpoints          Endpoints         `json:"endpoints"`
	Labels             map[string]string `json:"labels"`
	Identity           *Identity         `json:"identity,omitempty"`
	WorkloadPrefix     *string           `json:"workloadPrefix,omitempty"`
	JoinKeyID          string            `json:"joinKeyId"`
	EnrollmentPolicy   *string           `json:"enrollmentPolicy,omitempty"`
	Instance           *NodeInstance     `json:"instance,omitempty"`
	EnrolledAt         string            `json:"enrolledAt"`
	// Status is online, offline or never-seen.
	Status   string  `json:"status"`
	LastSeen *string `json:"lastSeen,omitempty"`
}

// InventoryInstance is one cloud instance as the controller's inventory stores it.
type InventoryInstance struct {
	Provider    string            `json:"provider"`
	Account     string            `json:"account"`
	Region      string            `json:"region"`
	Zone        *string           `json:"zone,omitempty"`
	Network     string            `json:"network"`
	Subnet      *string           `json:"subnet,omitempty"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	PrivateIPs  []string          `json:"privateIps"`
	PublicIPs   []string          `json:"publicIps"`
	Tags        map[string]string `json:"tags"`
	State       string            `json:"state"`
	SeenAt      string            `json:"seenAt"`
	AbsentSince *string           `json:"absentSince,omitempty"`
	BoundNode   *string           `json:"boundNode,omitempty"`
}

// Inventory is the part of GET /v1/inventory the provider reads.
type Inventory struct {
	Instances []InventoryInstance `json:"instances"`
}

// APIErrorBody is what the controller answers on every failure.
type APIErrorBody struct {
	Error   string        `json:"error"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail names one bad field of a refused request.
type ErrorDetail struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}
