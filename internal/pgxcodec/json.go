package pgxcodec

import (
	"encoding/json"

	"github.com/jackc/pgx/v5/pgtype"
)

// pgx scans json and jsonb into any target it has no special plan for,
// *json.RawMessage included, with its codec's Unmarshal, json.Unmarshal by
// default: for a RawMessage that checks the whole document and then copies
// it. A worker's claim reads a task context, a handler initialization and
// its ancestors' results for every step, and the check was a measurable
// part of its CPU. PostgreSQL sends only valid JSON (jsonb is stored
// parsed; json is checked on input), so the copy alone gives the same
// bytes.

// registerJSON registers json and jsonb (and their arrays) with pgx's
// codecs, their Unmarshal replaced by rawJSONUnmarshal. The default codecs'
// Marshal is kept.
func registerJSON(m *pgtype.Map) {
	jsonCodec := &pgtype.JSONCodec{Marshal: json.Marshal, Unmarshal: rawJSONUnmarshal}
	jsonbCodec := &pgtype.JSONBCodec{Marshal: json.Marshal, Unmarshal: rawJSONUnmarshal}
	jsonType := &pgtype.Type{Name: "json", OID: pgtype.JSONOID, Codec: jsonCodec}
	jsonbType := &pgtype.Type{Name: "jsonb", OID: pgtype.JSONBOID, Codec: jsonbCodec}
	m.RegisterType(jsonType)
	m.RegisterType(jsonbType)
	// As for uuid[]: the array types of a new Map refer to pgx's own types.
	m.RegisterType(&pgtype.Type{Name: "_json", OID: pgtype.JSONArrayOID, Codec: &pgtype.ArrayCodec{ElementType: jsonType}})
	m.RegisterType(&pgtype.Type{Name: "_jsonb", OID: pgtype.JSONBArrayOID, Codec: &pgtype.ArrayCodec{ElementType: jsonbType}})
}

// rawJSONUnmarshal is json.Unmarshal, except that a *json.RawMessage gets a
// copy of data without the JSON whitespace around it, which is what
// json.Unmarshal gives it for valid JSON. pgx calls it only for non-NULL
// values, after zeroing the target.
func rawJSONUnmarshal(data []byte, v any) error {
	if raw, ok := v.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], trimJSONSpace(data)...)
		return nil
	}
	return json.Unmarshal(data, v)
}

// trimJSONSpace cuts the whitespace JSON allows around a value.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
