// Package weftapi is the provider's client for the Weft controller's REST API: the bodies it
// sends and reads (types.go), the routes it calls (one table, checked against the controller's
// `GET /openapi.json` by internal/contract), and the controller's CA pinned by hash (pin.go).
//
// An endpoint is `https://host:port` (with a CA pin, or the system's CAs), `http://host:port`
// (a controller started with --no-api-tls), or `unix:///path/api.sock` (the controller's local
// socket, plain HTTP, readable by root only).
package weftapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Options configure a Client.
type Options struct {
	// Endpoint is https://host:port, http://host:port or unix:///path/to/api.sock.
	Endpoint string
	// CAHash pins the controller's CA (`sha256:…`); only with an https endpoint.
	CAHash string
	// Token is the controller's admin token.
	Token string
	// Timeout bounds each request (default 30 s).
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// Client calls the controller's REST API. Safe for concurrent use.
type Client struct {
	base  string
	token string
	agent string
	http  *http.Client
}

// New checks the options and returns a client; it does not contact the controller.
func New(o Options) (*Client, error) {
	if o.Token == "" {
		return nil, errors.New("no admin token: set token (or WEFT_ADMIN_TOKEN) to the contents of the controller's <state-dir>/admin-token")
	}
	if o.CAHash != "" && !ValidCAHash(o.CAHash) {
		return nil, fmt.Errorf("ca_hash %q: must be sha256: followed by 64 hex digits (the controller's <state-dir>/tls/ca.hash)", o.CAHash)
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("endpoint %q: must be https://host:port, http://host:port or unix:///path/to/api.sock", o.Endpoint)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	transport := &http.Transport{
		Proxy:               nil, // the controller is reached directly, never through a proxy
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	c := &Client{token: o.Token, agent: o.UserAgent, http: &http.Client{Transport: transport, Timeout: timeout}}
	switch u.Scheme {
	case "https":
		if u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("endpoint %q: want https://host:port with no path", o.Endpoint)
		}
		if o.CAHash != "" {
			transport.TLSClientConfig = pinnedTLS(u.Hostname(), o.CAHash, time.Now)
		}
		c.base = "https://" + u.Host
	case "http":
		if o.CAHash != "" {
			return nil, fmt.Errorf("endpoint %s: a CA pin (ca_hash) needs an https:// endpoint", o.Endpoint)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("endpoint %q: want http://host:port with no path", o.Endpoint)
		}
		c.base = "http://" + u.Host
	case "unix":
		if o.CAHash != "" {
			return nil, fmt.Errorf("endpoint %s: the unix socket is plain HTTP; leave ca_hash out", o.Endpoint)
		}
		socket := u.Path
		if socket == "" || u.Host != "" {
			return nil, fmt.Errorf("endpoint %q: want unix:///absolute/path/to/api.sock", o.Endpoint)
		}
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
		c.base = "http://controller"
	default:
		return nil, fmt.Errorf("endpoint %q: must be https://host:port, http://host:port or unix:///path/to/api.sock", o.Endpoint)
	}
	return c, nil
}

// Route is one call the client makes: the contract test checks each against the OpenAPI document.
type Route struct {
	Method string
	// Path in OpenAPI form, with {param} placeholders.
	Path     string
	Request  reflect.Type // nil: no body
	Response reflect.Type
	Status   int
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

var (
	routeCreateJoinKey          = Route{"POST", "/v1/keys", typeOf[JoinKeyCreateRequest](), typeOf[JoinKeyCreated](), 201}
	routeListJoinKeys           = Route{"GET", "/v1/keys", nil, typeOf[[]JoinKeyInfo](), 200}
	routeRevokeJoinKey          = Route{"DELETE", "/v1/keys/{id}", nil, typeOf[JoinKeyInfo](), 200}
	routePutEnrollmentPolicy    = Route{"PUT", "/v1/enrollment-policies/{name}", typeOf[EnrollmentPolicy](), typeOf[EnrollmentPolicy](), 200}
	routeGetEnrollmentPolicy    = Route{"GET", "/v1/enrollment-policies/{name}", nil, typeOf[EnrollmentPolicy](), 200}
	routeDeleteEnrollmentPolicy = Route{"DELETE", "/v1/enrollment-policies/{name}", nil, typeOf[EnrollmentPolicy](), 200}
	routePutPolicy              = Route{"PUT", "/v1/policies/{name}", typeOf[Policy](), typeOf[Policy](), 200}
	routeGetPolicy              = Route{"GET", "/v1/policies/{name}", nil, typeOf[Policy](), 200}
	routeDeletePolicy           = Route{"DELETE", "/v1/policies/{name}", nil, typeOf[Policy](), 200}
	routeListNodes              = Route{"GET", "/v1/nodes", nil, typeOf[[]Node](), 200}
	routeGetNode                = Route{"GET", "/v1/nodes/{id}", nil, typeOf[Node](), 200}
	routeDeleteNode             = Route{"DELETE", "/v1/nodes/{id}", nil, typeOf[Node](), 200}
	routeListIdentities         = Route{"GET", "/v1/identities", nil, typeOf[[]Identity](), 200}
	routeInventory              = Route{"GET", "/v1/inventory", nil, typeOf[Inventory](), 200}
)

// Routes lists every route the client calls.
func Routes() []Route {
	return []Route{
		routeCreateJoinKey, routeListJoinKeys, routeRevokeJoinKey,
		routePutEnrollmentPolicy, routeGetEnrollmentPolicy, routeDeleteEnrollmentPolicy,
		routePutPolicy, routeGetPolicy, routeDeletePolicy,
		routeListNodes, routeGetNode, routeDeleteNode,
		routeListIdentities, routeInventory,
		routePutService, routeGetService, routeListServices, routeDeleteService,
	}
}

// CreateJoinKey creates a join key; the answer holds the secret, shown only this once.
func (c *Client) CreateJoinKey(ctx context.Context, req JoinKeyCreateRequest) (*JoinKeyCreated, error) {
	var out JoinKeyCreated
	return &out, c.call(ctx, routeCreateJoinKey, nil, req, &out)
}

// ListJoinKeys lists every join key, revoked and expired ones included.
func (c *Client) ListJoinKeys(ctx context.Context) ([]JoinKeyInfo, error) {
	var out []JoinKeyInfo
	return out, c.call(ctx, routeListJoinKeys, nil, nil, &out)
}

// GetJoinKey finds one join key by id in the list (the API has no GET of one key); a missing key
// is an *APIError with status 404.
func (c *Client) GetJoinKey(ctx context.Context, id string) (*JoinKeyInfo, error) {
	keys, err := c.ListJoinKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].ID == id {
			return &keys[i], nil
		}
	}
	return nil, &APIError{Method: "GET", Path: "/v1/keys", Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("join key %s does not exist", id)}
}

// RevokeJoinKey revokes a join key; nodes enrolled with it stay.
func (c *Client) RevokeJoinKey(ctx context.Context, id string) (*JoinKeyInfo, error) {
	var out JoinKeyInfo
	return &out, c.call(ctx, routeRevokeJoinKey, []string{id}, nil, &out)
}

// PutEnrollmentPolicy creates or replaces the enrollment policy named p.Name.
func (c *Client) PutEnrollmentPolicy(ctx context.Context, p EnrollmentPolicy) (*EnrollmentPolicy, error) {
	var out EnrollmentPolicy
	return &out, c.call(ctx, routePutEnrollmentPolicy, []string{p.Name}, p, &out)
}

// GetEnrollmentPolicy reads one enrollment policy.
func (c *Client) GetEnrollmentPolicy(ctx context.Context, name string) (*EnrollmentPolicy, error) {
	var out EnrollmentPolicy
	return &out, c.call(ctx, routeGetEnrollmentPolicy, []string{name}, nil, &out)
}

// DeleteEnrollmentPolicy deletes an enrollment policy; nodes enrolled through it stay.
func (c *Client) DeleteEnrollmentPolicy(ctx context.Context, name string) error {
	return c.call(ctx, routeDeleteEnrollmentPolicy, []string{name}, nil, &EnrollmentPolicy{})
}

// PutPolicy creates or replaces the policy named p.Name; the answer is the stored (normalised) document.
func (c *Client) PutPolicy(ctx context.Context, p Policy) (*Policy, error) {
	var out Policy
	return &out, c.call(ctx, routePutPolicy, []string{p.Name}, p, &out)
}

// GetPolicy reads one policy.
func (c *Client) GetPolicy(ctx context.Context, name string) (*Policy, error) {
	var out Policy
	return &out, c.call(ctx, routeGetPolicy, []string{name}, nil, &out)
}

// DeletePolicy deletes a policy.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	return c.call(ctx, routeDeletePolicy, []string{name}, nil, &Policy{})
}

// ListNodes lists every node with its liveness.
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	var out []Node
	return out, c.call(ctx, routeListNodes, nil, nil, &out)
}

// GetNode reads one node by id or name.
func (c *Client) GetNode(ctx context.Context, idOrName string) (*Node, error) {
	var out Node
	return &out, c.call(ctx, routeGetNode, []string{idOrName}, nil, &out)
}

// DeleteNode deletes a node: it leaves every peer's WireGuard.
func (c *Client) DeleteNode(ctx context.Context, idOrName string) error {
	return c.call(ctx, routeDeleteNode, []string{idOrName}, nil, &Node{})
}

// ListIdentities lists every allocated identity.
func (c *Client) ListIdentities(ctx context.Context) ([]Identity, error) {
	var out []Identity
	return out, c.call(ctx, routeListIdentities, nil, nil, &out)
}

// Inventory reads the controller's cloud inventory.
func (c *Client) Inventory(ctx context.Context) (*Inventory, error) {
	var out Inventory
	return &out, c.call(ctx, routeInventory, nil, nil, &out)
}

func (c *Client) call(ctx context.Context, r Route, params []string, in, out any) error {
	path := r.Path
	for _, p := range params {
		open := strings.Index(path, "{")
		end := strings.Index(path, "}")
		path = path[:open] + url.PathEscape(p) + path[end+1:]
	}
	return c.Do(ctx, r.Method, path, in, out, r.Status)
}

// Do sends one request with the admin token and decodes a `want` answer into out (when not nil).
// Any other status is an *APIError carrying the controller's message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode the request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	res, err := c.http.Do(req)
	if err != nil {
		var pin *PinMismatchError
		if errors.As(err, &pin) {
			return fmt.Errorf("%s %s: %w", method, path, pin)
		}
		return &APIError{Method: method, Path: path, Code: "unreachable", Message: fmt.Sprintf("cannot reach the controller: %v", err), Retryable: true, cause: err}
	}
	defer res.Body.Close()
	text, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return &APIError{Method: method, Path: path, Status: res.StatusCode, Code: "unreachable", Message: fmt.Sprintf("reading the answer: %v", err), Retryable: true, cause: err}
	}
	if res.StatusCode != want {
		var e APIErrorBody
		if json.Unmarshal(text, &e) != nil || e.Message == "" {
			e = APIErrorBody{Error: "http_error", Message: fmt.Sprintf("HTTP %d: %.200s", res.StatusCode, text)}
		}
		return &APIError{Method: method, Path: path, Status: res.StatusCode, Code: e.Error, Message: e.Message, Details: e.Details, Retryable: res.StatusCode >= 500}
	}
	if out != nil {
		if err := json.Unmarshal(text, out); err != nil {
			return &APIError{Method: method, Path: path, Status: res.StatusCode, Code: "bad_response", Message: fmt.Sprintf("unexpected answer: %v", err), cause: err}
		}
	}
	return nil
}

// APIError is a failed call: the controller's refusal (Status, Code, Message, Details), or no
// answer at all (Status 0, Code "unreachable").
type APIError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
	Details      []ErrorDetail
	// Retryable is true for network failures and 5xx answers.
	Retryable bool
	cause     error
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.Message)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

func (e *APIError) Unwrap() error { return e.cause }

// IsNotFound reports whether err is the controller's 404.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
