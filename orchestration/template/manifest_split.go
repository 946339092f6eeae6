package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// document is one document of a manifest file, converted to JSON.
type document struct {
	// index is the 1-based position among the file's non-empty documents.
	index int
	// line is the 1-based line of the file where the document starts.
	line int
	// item is the 1-based position within a List document, or 0.
	item int
	// raw is the document as JSON; nil for an empty document.
	raw json.RawMessage
	// err is why the document could not be converted to JSON.
	err error
}

// utf8BOM may start a file written by some editors.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// splitDocuments cuts data into documents: a stream of JSON values when it
// starts with '{' or '[', else YAML documents separated by "---" lines. Empty
// documents are dropped.
func splitDocuments(data []byte) []document {
	data = bytes.TrimPrefix(data, utf8BOM)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return splitJSON(data)
	}
	return splitYAML(data)
}

// splitJSON reads a stream of JSON values. A syntax error ends the stream,
// since nothing after it can be trusted.
func splitJSON(data []byte) []document {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	for {
		start := skipSpace(data, int(dec.InputOffset()))
		doc := document{index: len(docs) + 1, line: lineAt(data, start)}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			doc.err = fmt.Errorf("invalid JSON: %w", err)
			return append(docs, doc)
		}
		if !isUnsetRaw(raw) {
			doc.raw = raw
			docs = append(docs, doc)
		}
	}
}

// splitYAML cuts data at document markers ("---" or "..." lines) and converts
// each document to JSON, the way kubectl does. Documents holding nothing but
// comments and blank lines are dropped.
func splitYAML(data []byte) []document {
	var docs []document
	chunkStart := 1
	var chunk bytes.Buffer
	flush := func() {
		if doc, ok := yamlDocument(chunk.Bytes(), chunkStart, len(docs)+1); ok {
			docs = append(docs, doc)
		}
		chunk.Reset()
	}
	for lineNo, line := range bytes.SplitAfter(data, []byte("\n")) {
		if rest, ok := documentMarker(line); ok {
			flush()
			chunkStart = lineNo + 1
			chunk.Write(rest)
			continue
		}
		chunk.Write(line)
	}
	flush()
	return docs
}

// yamlDocument converts one YAML document that starts at line start. It is
// parsed after start-1 blank lines, so that YAML errors carry the line numbers
// of the file. ok is false when the document is empty.
func yamlDocument(chunk []byte, start, index int) (document, bool) {
	if len(bytes.TrimSpace(chunk)) == 0 {
		return document{}, false
	}
	padded := append(bytes.Repeat([]byte("\n"), start-1), chunk...)
	raw, err := yaml.YAMLToJSONStrict(padded)
	doc := document{index: index, line: start + leadingBlankLines(chunk)}
	if err != nil {
		doc.err = fmt.Errorf("invalid YAML: %w", err)
		return doc, true
	}
	if isUnsetRaw(raw) {
		return document{}, false
	}
	doc.raw = raw
	return doc, true
}

// documentMarker reports whether line is a YAML document marker ("---" or
// "...", alone or followed by a space) and returns what follows "---" on the
// line, which belongs to the next document.
func documentMarker(line []byte) ([]byte, bool) {
	body := bytes.TrimRight(line, "\r\n")
	for _, marker := range [][]byte{[]byte("---"), []byte("...")} {
		rest, found := bytes.CutPrefix(body, marker)
		if !found || (len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		if marker[0] == '.' {
			return nil, true
		}
		return append(bytes.TrimSpace(rest), '\n'), true
	}
	return nil, false
}

// leadingBlankLines counts the blank and comment-only lines that start chunk.
func leadingBlankLines(chunk []byte) int {
	n := 0
	for _, line := range bytes.SplitAfter(chunk, []byte("\n")) {
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 && trimmed[0] != '#' {
			break
		}
		n++
	}
	return n
}

// skipSpace returns the offset of the first non-space byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// lineAt returns the 1-based line of the byte at offset i.
func lineAt(data []byte, i int) int {
	return 1 + bytes.Count(data[:min(i, len(data))], []byte("\n"))
}
