// Package contract checks the provider against the controller's own description of its API,
// `GET /openapi.json` (generated from controller/src/api/routes.ts), so the two cannot drift
// silently: every route the client calls must exist with the status it expects; every field of
// every body it sends or reads must be in the schema with a compatible type (and every field the
// controller requires or takes in a request body must be one the client can send); and every limit and pattern the provider checks at plan time
// (internal/validate) must equal the schema's.
package contract

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/weft/weft/terraform/internal/weftapi"
)

// Document is a parsed OpenAPI document.
type Document map[string]any

// CheckRoutes reports each way the client's routes disagree with doc.
func CheckRoutes(doc Document, routes []weftapi.Route) []string {
	var out []string
	for _, r := range routes {
		where := r.Method + " " + r.Path
		op, ok := lookup(doc, "/paths/"+escape(r.Path)+"/"+strings.ToLower(r.Method)).(map[string]any)
		if !ok {
			out = append(out, where+": the controller has no such route")
			continue
		}
		res := lookup(op, "/responses/"+strconv.Itoa(r.Status)+"/content/application~1json/schema")
		if res == nil {
			out = append(out, fmt.Sprintf("%s: the controller does not answer %d with a JSON body", where, r.Status))
		} else {
			out = append(out, compare(r.Response, res.(map[string]any), where+" response", false)...)
		}
		req := lookup(op, "/requestBody/content/application~1json/schema")
		switch {
		case r.Request == nil && req != nil:
			out = append(out, where+": the controller takes a request body the client does not send")
		case r.Request != nil && req == nil:
			out = append(out, where+": the client sends a body the controller does not take")
		case r.Request != nil:
			out = append(out, compare(r.Request, req.(map[string]any), where+" request", true)...)
		}
	}
	return out
}

// compare checks Go type t against schema s. In a request every Go field must be accepted and
// every required property sent; in a response every Go field must be in the schema, and a field
// the controller may leave out must be able to say so in Go (pointer, slice, map, omitempty).
func compare(t reflect.Type, s map[string]any, where string, request bool) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if alts, ok := s["anyOf"].([]any); ok && t.Kind() == reflect.Struct {
		return compareUnion(t, alts, where, request)
	}
	typ, _ := s["type"].(string)
	if typ == "" && s["properties"] == nil && s["items"] == nil && s["additionalProperties"] == nil {
		// What zod cannot describe (a transform's output) is published as "any": nothing to compare.
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if typ != "object" {
			return []string{fmt.Sprintf("%s: Go has an object, the schema %q", where, typ)}
		}
		props, _ := s["properties"].(map[string]any)
		var out []string
		sent := map[string]bool{}
		for _, f := range fields(t) {
			sent[f.name] = !f.omitempty
			p, ok := props[f.name].(map[string]any)
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: not in the controller's schema", where, f.name))
				continue
			}
			out = append(out, compare(f.typ, p, where+"."+f.name, request)...)
			if !request && !f.optional && !slices.Contains(required(s), f.name) {
				out = append(out, fmt.Sprintf("%s.%s: the controller may leave it out, but Go cannot tell absent from empty", where, f.name))
			}
		}
		if request {
			for _, name := range required(s) {
				if always, known := sent[name]; !known || !always {
					out = append(out, fmt.Sprintf("%s.%s: required by the controller, not always sent", where, name))
				}
			}
			// A field the controller takes and the client cannot send is one Terraform would
			// silently drop (and, on a PUT, erase when it was set another way).
			for _, name := range slices.Sorted(maps.Keys(props)) {
				if _, known := sent[name]; !known {
					out = append(out, fmt.Sprintf("%s.%s: the controller takes it, the client cannot send it", where, name))
				}
			}
		}
		return out
	case reflect.Slice:
		if typ != "array" {
			return []string{fmt.Sprintf("%s: Go has a list, the schema %q", where, typ)}
		}
		items, _ := s["items"].(map[string]any)
		return compare(t.Elem(), items, where+"[]", request)
	case reflect.Map:
		if typ != "object" {
			return []string{fmt.Sprintf("%s: Go has a map, the schema %q", where, typ)}
		}
		elem, ok := s["additionalProperties"].(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: the schema is not a map", where)}
		}
		return compare(t.Elem(), elem, where+"{}", request)
	case reflect.String:
		if typ != "string" {
			return []string{fmt.Sprintf("%s: Go has a string, the schema %q", where, typ)}
		}
	case reflect.Int, reflect.Int64:
		if typ != "integer" && typ != "number" {
			return []string{fmt.Sprintf("%s: Go has an integer, the schema %q", where, typ)}
		}
	case reflect.Bool:
		if typ != "boolean" {
			return []string{fmt.Sprintf("%s: Go has a boolean, the schema %q", where, typ)}
		}
	default:
		return []string{fmt.Sprintf("%s: Go type %s is not checked", where, t)}
	}
	return nil
}

// compareUnion checks a Go struct that stands for an anyOf of objects (a policy selector): each Go
// field must be a property of some alternative, with a compatible type there.
func compareUnion(t reflect.Type, alts []any, where string, request bool) []string {
	var out []string
	for _, f := range fields(t) {
		found := false
		for _, a := range alts {
			p, ok := lookup(a, "/properties/"+escape(f.name)).(map[string]any)
			if ok {
				found = true
				out = append(out, compare(f.typ, p, where+"."+f.name, request)...)
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("%s.%s: in none of the controller's alternatives", where, f.name))
		}
	}
	return out
}

type field struct {
	name      string
	typ       reflect.Type
	omitempty bool
	// optional: Go can represent "absent" (pointer, slice, map, or omitempty).
	optional bool
}

// fields lists t's JSON fields, flattening embedded structs as encoding/json does.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			out = append(out, fields(f.Type)...)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		k := f.Type.Kind()
		omit := strings.Contains(opts, "omitempty")
		out = append(out, field{name, f.Type, omit, omit || k == reflect.Pointer || k == reflect.Slice || k == reflect.Map})
	}
	return out
}

func required(s map[string]any) []string {
	var out []string
	for _, r := range asSlice(s["required"]) {
		if name, ok := r.(string); ok {
			out = append(out, name)
		}
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// escape turns a path or name into one JSON pointer segment.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// lookup follows a JSON pointer (RFC 6901) into v; nil when a segment is missing.
func lookup(v any, pointer string) any {
	if pointer == "" {
		return v
	}
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch node := v.(type) {
		case map[string]any:
			v = node[seg]
		case Document:
			v = node[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil
			}
			v = node[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// Limit is one value the provider checks at plan time and where the schema states it.
type Limit struct {
	Pointer string // JSON pointer into the document
	Want    any    // string, number (as float64 or int) or []string
}

// CheckLimits reports each limit whose value in doc differs from the provider's.
func CheckLimits(doc Document, limits []Limit) []string {
	var out []string
	for _, l := range limits {
		got := lookup(doc, l.Pointer)
		if !sameValue(got, l.Want) {
			out = append(out, fmt.Sprintf("%s: the controller says %v, the provider checks %v", l.Pointer, got, l.Want))
		}
	}
	return out
}

func sameValue(got, want any) bool {
	switch w := want.(type) {
	case int:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case []string:
		g := asSlice(got)
		if len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i] != w[i] {
				return false
			}
		}
		return true
	default:
		return got == want
	}
}
