package weftapi

import "context"

// Services (protocol/src/service.ts): the document applied with PUT /v1/services/{namespace}/{name}
// and what the controller answers about one.

// Service is a service document. The controller fills version, algorithm, locality, a port's
// protocol and a health check's interval and thresholds when absent; the provider always sends them.
type Service struct {
	Version     int64             `json:"version"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Description *string           `json:"description,omitempty"`
	Ports       []ServicePort     `json:"ports"`
	Algorithm   string            `json:"algorithm"`
	Backends    []BackendSelector `json:"backends,omitempty"`
	Subsets     []ServiceSubset   `json:"subsets,omitempty"`
	Locality    string            `json:"locality"`
	HealthCheck *HealthCheck      `json:"healthCheck,omitempty"`
	RateLimit   *RateLimit        `json:"rateLimit,omitempty"`
	VIP         *string           `json:"vip,omitempty"`
}

// ServicePort is a port clients connect to on the VIP and the port the backends listen on.
type ServicePort struct {
	Name       *string `json:"name,omitempty"`
	Port       int64   `json:"port"`
	Protocol   string  `json:"protocol"`
	TargetPort *int64  `json:"targetPort,omitempty"`
}

// BackendSelector is exactly one of identity, namespace (with serviceAccount) or labels,
// optionally only in some sites or on some nodes.
type BackendSelector struct {
	Identity       *string           `json:"identity,omitempty"`
	Namespace      *string           `json:"namespace,omitempty"`
	ServiceAccount *string           `json:"serviceAccount,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Sites          []string          `json:"sites,omitempty"`
	Nodes          []string          `json:"nodes,omitempty"`
}

// ServiceSubset is a weighted group of backends (algorithm weighted).
type ServiceSubset struct {
	Name     string            `json:"name"`
	Weight   int64             `json:"weight"`
	Backends []BackendSelector `json:"backends"`
}

// HealthCheck is how agents check the backends they host.
type HealthCheck struct {
	Protocol           string  `json:"protocol"`
	Port               *int64  `json:"port,omitempty"`
	Path               *string `json:"path,omitempty"`
	IntervalMs         int64   `json:"intervalMs"`
	TimeoutMs          *int64  `json:"timeoutMs,omitempty"`
	HealthyThreshold   int64   `json:"healthyThreshold"`
	UnhealthyThreshold int64   `json:"unhealthyThreshold"`
}

// RateLimit bounds new connections per second per source identity and client node.
type RateLimit struct {
	ConnectionsPerSecond int64  `json:"connectionsPerSecond"`
	Burst                *int64 `json:"burst,omitempty"`
}

// ServiceRecord is what PUT and DELETE answer: the stored document and its VIP.
type ServiceRecord struct {
	Spec      Service `json:"spec"`
	VIP       string  `json:"vip"`
	CreatedAt string  `json:"createdAt"`
	UpdatedAt string  `json:"updatedAt"`
}

// ServiceView is what GET answers: the document, its VIP and DNS name (backends' live state left out).
type ServiceView struct {
	Service   Service `json:"service"`
	VIP       string  `json:"vip"`
	DNSName   string  `json:"dnsName"`
	CreatedAt string  `json:"createdAt"`
	UpdatedAt string  `json:"updatedAt"`
}

var (
	routePutService    = Route{"PUT", "/v1/services/{namespace}/{name}", typeOf[Service](), typeOf[ServiceRecord](), 200}
	routeGetService    = Route{"GET", "/v1/services/{namespace}/{name}", nil, typeOf[ServiceView](), 200}
	routeListServices  = Route{"GET", "/v1/services", nil, typeOf[[]ServiceView](), 200}
	routeDeleteService = Route{"DELETE", "/v1/services/{namespace}/{name}", nil, typeOf[ServiceRecord](), 200}
)

// PutService creates or replaces the service s.Namespace/s.Name.
func (c *Client) PutService(ctx context.Context, s Service) (*ServiceRecord, error) {
	var out ServiceRecord
	return &out, c.call(ctx, routePutService, []string{s.Namespace, s.Name}, s, &out)
}

// GetService reads one service with its VIP and DNS name.
func (c *Client) GetService(ctx context.Context, namespace, name string) (*ServiceView, error) {
	var out ServiceView
	return &out, c.call(ctx, routeGetService, []string{namespace, name}, nil, &out)
}

// ListServices reads every service.
func (c *Client) ListServices(ctx context.Context) ([]ServiceView, error) {
	var out []ServiceView
	return out, c.call(ctx, routeListServices, nil, nil, &out)
}

// DeleteService deletes a service and releases its VIP.
func (c *Client) DeleteService(ctx context.Context, namespace, name string) error {
	return c.call(ctx, routeDeleteService, []string{namespace, name}, nil, &ServiceRecord{})
}
