package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// yamlIndent is the indentation of the YAML that [Manifest.YAML] writes.
const yamlIndent = 2

// yaml11Booleans are the plain scalars that YAML 1.1 parsers, such as the one
// kubectl uses, read as booleans; strings with these values are written quoted.
var yaml11Booleans = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

// YAML renders m as a YAML document in block style, with the fields in the
// order of the Go types (apiVersion, kind, metadata, spec; within the spec,
// namespaceName, name, version, ...) and lists of plain values, such as
// dependsOn, on one line. Keys of raw JSON (inputSchema, initialization) keep
// the order encoding/json gives them. [ParseManifests] reads the output back to
// an equal manifest.
func (m Manifest) YAML() ([]byte, error) {
	encoded, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest %s: %w", m.Metadata.Name, err)
	}
	// JSON is YAML: parsing it keeps the key order, and resetting the styles
	// that JSON syntax implies (flow collections, quoted strings) gives block
	// YAML.
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(encoded, &root); err != nil {
		return nil, fmt.Errorf("re-reading manifest %s: %w", m.Metadata.Name, err)
	}
	blockStyle(&root)
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(yamlIndent)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("writing manifest %s as YAML: %w", m.Metadata.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing manifest %s as YAML: %w", m.Metadata.Name, err)
	}
	return out.Bytes(), nil
}

// blockStyle gives node and its descendants the default (block, plain) style,
// except that sequences of scalars are written in flow style and strings that
// a YAML 1.1 parser would read as booleans stay quoted. The encoder quotes any
// other string that would otherwise read as a number, boolean or null.
func blockStyle(node *yamlv3.Node) {
	node.Style = 0
	switch node.Kind {
	case yamlv3.ScalarNode:
		if node.Tag == "!!str" && yaml11Booleans[node.Value] {
			node.Style = yamlv3.DoubleQuotedStyle
		}
	case yamlv3.SequenceNode:
		if len(node.Content) > 0 && allScalars(node.Content) {
			node.Style = yamlv3.FlowStyle
		}
	default:
	}
	for _, child := range node.Content {
		blockStyle(child)
	}
}

// allScalars reports whether every node is a scalar on one line.
func allScalars(nodes []*yamlv3.Node) bool {
	for _, n := range nodes {
		if n.Kind != yamlv3.ScalarNode || strings.Contains(n.Value, "\n") {
			return false
		}
	}
	return true
}
