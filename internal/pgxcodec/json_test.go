package pgxcodec_test

import (
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
)

// TestRawJSON checks that json and jsonb scan into json.RawMessage (plain,
// pointer, in a struct row) exactly as with pgx's own codecs, in both
// protocols, and that other targets still decode.
func TestRawJSON(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	const query = `SELECT '{"b": [1, 2.50, "x"], "a": null}'::jsonb, '  {"keep": "as written",  "n": 1.50} '::json,
		'null'::jsonb, NULL::jsonb, '"text"'::json, ARRAY['{"e": 1}'::jsonb, '[]'::jsonb]`
	type row struct {
		JSONB, JSON, Null, Text json.RawMessage
		Missing                 *json.RawMessage
		Array                   []json.RawMessage
	}
	read := func(conn *pgx.Conn, mode pgx.QueryExecMode) row {
		var r row
		require.NoError(t, conn.QueryRow(t.Context(), query, mode).Scan(&r.JSONB, &r.JSON, &r.Null, &r.Missing, &r.Text, &r.Array))
		return r
	}
	want := row{
		JSONB: json.RawMessage(`{"a": null, "b": [1, 2.50, "x"]}`),
		JSON:  json.RawMessage(`{"keep": "as written",  "n": 1.50}`),
		Null:  json.RawMessage(`null`),
		Text:  json.RawMessage(`"text"`),
		Array: []json.RawMessage{json.RawMessage(`{"e": 1}`), json.RawMessage(`[]`)},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		def, reg := read(connect(t, db, false), mode), read(connect(t, db, true), mode)
		require.Equal(t, want, def, "pgx's own codecs, mode %v", mode)
		require.Equal(t, def, reg, "registered codecs, mode %v", mode)
	}

	// Targets other than RawMessage still go through encoding/json.
	conn := connect(t, db, true)
	var doc struct {
		B []any `json:"b"`
	}
	var anything any
	require.NoError(t, conn.QueryRow(t.Context(), query).Scan(&doc, nil, nil, nil, &anything, nil))
	require.Equal(t, []any{1.0, 2.5, "x"}, doc.B)
	require.Equal(t, "text", anything)
	var bad struct{ B string }
	require.ErrorContains(t, conn.QueryRow(t.Context(), query).Scan(&bad, nil, nil, nil, nil, nil), "cannot unmarshal")

	// A RawMessage the caller holds is not reused for the next value.
	rows, err := conn.Query(t.Context(), `SELECT v FROM (VALUES ('{"n": 1}'::jsonb), ('{"n": 2}'::jsonb)) AS t (v)`)
	require.NoError(t, err)
	var got []json.RawMessage
	for rows.Next() {
		var v json.RawMessage
		require.NoError(t, rows.Scan(&v))
		got = append(got, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []json.RawMessage{json.RawMessage(`{"n": 1}`), json.RawMessage(`{"n": 2}`)}, got)
}
