package template

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Fingerprint returns the hex SHA-256 of a canonical JSON encoding of
// [Definition.WithDefaults]. Two definitions that differ only in values the defaults
// fill in, or in the whitespace and object key order of their raw JSON (inputSchema,
// handler initialization), have the same fingerprint; any other change produces a
// different one. Registration uses it to detect the same namespace, name and version
// registered with a different definition.
//
// Numbers inside raw JSON are compared by their text, so 1 and 1.0 differ. Raw JSON
// that does not parse is hashed as its exact bytes.
func (d Definition) Fingerprint() string {
	canonical := d.WithDefaults()
	canonical.InputSchema = canonicalJSON(canonical.InputSchema)
	for i := range canonical.Steps {
		init := &canonical.Steps[i].Handler.Initialization
		*init = canonicalJSON(*init)
	}
	encoded, err := json.Marshal(canonical)
	if err != nil {
		// Unreachable: every raw field holds valid JSON after canonicalJSON.
		panic("template: encoding a canonical definition: " + err.Error())
	}
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:])
}

// canonicalJSON re-encodes raw compactly with object keys sorted. Raw JSON that does
// not parse becomes a JSON string holding its bytes in hex, so the hash still covers
// them exactly.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return unparsedJSON(raw)
	}
	// encoding/json sorts map keys and writes json.Number verbatim.
	encoded, err := json.Marshal(v)
	if err != nil {
		return unparsedJSON(raw)
	}
	return encoded
}

// unparsedJSON wraps bytes that are not JSON in a JSON string.
func unparsedJSON(raw []byte) json.RawMessage {
	return json.RawMessage(`"unparsed:` + hex.EncodeToString(raw) + `"`)
}
