// Package pgxcodec makes pgx convert two kinds of values that every hot
// statement of tasker carries without going through encoding/json or
// database/sql:
//
//   - github.com/google/uuid values are encoded and scanned as the 16 bytes
//     of PostgreSQL's binary uuid format (UUIDCodec);
//   - json and jsonb columns scanned into a *json.RawMessage are copied
//     as they are, not checked by encoding/json first (rawJSONUnmarshal):
//     PostgreSQL only ever sends valid JSON.
//
// Register installs both on a connection's type map; the tasker command,
// the profiler and the test databases' pools call it from AfterConnect.
package pgxcodec

import "github.com/jackc/pgx/v5/pgtype"

// Register makes m encode uuid.UUID and *uuid.UUID and scan into *uuid.UUID
// (and through pgx's wrappers into **uuid.UUID, []uuid.UUID and
// []*uuid.UUID) directly in the binary format, and scan json and jsonb
// into *json.RawMessage by copying. Call it on a connection's TypeMap
// before using it, e.g. from pgxpool.Config.AfterConnect.
func Register(m *pgtype.Map) {
	registerUUID(m)
	registerJSON(m)
}
