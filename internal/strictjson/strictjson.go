// Package strictjson decodes JSON objects strictly, for the payloads a
// person or a state machine sends: an unknown, repeated or misspelt field, a
// wrong type or trailing data is refused with an error that names the field
// as the sender wrote it and the fields or values accepted. The accepted
// field names are the JSON tags of the target type, so they are written once.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Decode decodes the object data into v (a pointer to a struct), refusing
// unknown or repeated fields, wrong types and trailing data. Field names must
// match exactly: encoding/json alone would take "DRYRUN" for "dryRun".
func Decode(data []byte, v any) error {
	accepted := Fields(v)
	if err := checkKeys(data, accepted); err != nil {
		return fmt.Errorf("%w; accepted fields: %s", err, strings.Join(accepted, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var nested *fieldError
		switch {
		case errors.As(err, &nested):
			return nested
		case errors.As(err, &typeErr):
			return fmt.Errorf("field %q: expected %s, got a JSON %s", jsonPath(v, typeErr.Field), jsonKind(typeErr.Type.String()), typeErr.Value)
		}
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// DecodeField decodes the object of a nested field strictly into v, for an
// UnmarshalJSON method: its error names the field ("target") and is passed
// through by the Decode of the enclosing object as it is.
func DecodeField(field string, data []byte, v any) error {
	if err := Decode(data, v); err != nil {
		return &fieldError{err: fmt.Errorf("field %q: %w", field, err)}
	}
	return nil
}

// fieldError is the error of a nested object, already worded for the
// person who sent it.
type fieldError struct{ err error }

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// Fields lists the JSON field names of the struct v points to, in the
// struct's order, with the fields of embedded structs in their place.
func Fields(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || tag == "-":
		case f.Anonymous && tag == "":
			// Its fields follow, as VisibleFields lists them.
		case tag != "":
			out = append(out, tag)
		default:
			out = append(out, f.Name)
		}
	}
	return out
}

// jsonPath is the path of a type error's field as the sender wrote it.
// encoding/json (since Go 1.24) puts the name of every embedded struct on
// the path too ("TargetSummary.cancelled" for a collect result's
// "cancelled"): a name the sender never wrote, dropped here.
func jsonPath(v any, path string) string {
	t := reflect.TypeOf(v)
	var out []string
	for _, name := range strings.Split(path, ".") {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			out, t = append(out, name), nil
			continue
		}
		if f, ok := t.FieldByName(name); ok && f.Anonymous && f.Tag.Get("json") == "" {
			t = f.Type
			continue
		}
		out = append(out, name)
		var next reflect.Type
		for _, f := range reflect.VisibleFields(t) {
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
				next = f.Type
				break
			}
		}
		t = next
	}
	return strings.Join(out, ".")
}

// checkKeys walks the top-level object's keys.
func checkKeys(data []byte, accepted []string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token() // the opening brace
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return errors.New("expected a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		key, _ := tok.(string)
		switch {
		case !slices.Contains(accepted, key):
			return fmt.Errorf("unknown field %q", key)
		case seen[key]:
			return fmt.Errorf("field %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
	}
	return nil
}

// jsonKind names a Go type as the JSON a sender should write.
func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "bool":
		return "true or false"
	case "int", "int32", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	}
	return goType
}

// AsIs marks err as already worded for the sender, with the field named, so
// that the Decode of the enclosing object returns it as it is: for an
// UnmarshalJSON method that checks more than the shape.
func AsIs(err error) error { return &fieldError{err: err} }
