package pgxcodec_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/internal/pgxcodec"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// maps are the two type maps every test compares: pgx's own, which handles
// uuid.UUID through database/sql's interfaces, and one with Register
// applied. Both must give the same results.
var maps = []struct {
	name     string
	register bool
}{{"default", false}, {"registered", true}}

// newMap returns a new type map, with Register applied when register is
// true.
func newMap(register bool) *pgtype.Map {
	m := pgtype.NewMap()
	if register {
		pgxcodec.Register(m)
	}
	return m
}

// connect opens a connection on db, with Register applied to its type map
// when register is true, closed when the test ends.
func connect(t *testing.T, db *pgtest.Database, register bool) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if register {
		pgxcodec.Register(conn.TypeMap())
	}
	return conn
}

var (
	id1 = uuid.MustParse("0f8c7f6e-2b1a-4c3d-9e8f-a1b2c3d4e5f6")
	id2 = uuid.MustParse("ffffffff-0000-4000-8000-000000000001")
	id3 = uuid.MustParse("7a1e0c52-8d2b-7e61-b5c3-0123456789ab")
)

// TestRegisterPlans checks that the registered map takes the binary fast
// paths, for values, pointers and array elements alike.
func TestRegisterPlans(t *testing.T) {
	t.Parallel()
	def, reg := newMap(false), newMap(true)
	u := id1
	for _, value := range []any{uuid.UUID{}, &u} {
		assert.Equal(t, "*pgtype.encodePlanDriverValuer", fmt.Sprintf("%T", def.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, value)))
		assert.Contains(t, fmt.Sprintf("%T", reg.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, value)), "pgxcodec.encodePlanUUID")
	}
	assert.Equal(t, "*pgtype.scanPlanCodecSQLScanner", fmt.Sprintf("%T", def.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &u)))
	assert.Equal(t, "pgxcodec.scanPlanUUID", fmt.Sprintf("%T", reg.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &u)))

	arrayType, ok := reg.TypeForOID(pgtype.UUIDArrayOID)
	require.True(t, ok)
	arrayCodec, ok := arrayType.Codec.(*pgtype.ArrayCodec)
	require.True(t, ok, "%T", arrayType.Codec)
	assert.IsType(t, pgxcodec.UUIDCodec{}, arrayCodec.ElementType.Codec)
}

// TestMapEncodeScan compares the registered map with pgx's own, without a
// database: the same bytes in both formats, and the same scanned values.
func TestMapEncodeScan(t *testing.T) {
	t.Parallel()
	def, reg := newMap(false), newMap(true)
	values := []any{
		id1, uuid.Nil, new(id2), (*uuid.UUID)(nil),
		[]uuid.UUID{id1, id2, uuid.Nil},
		[]uuid.UUID{},
		[]uuid.UUID(nil),
		[]*uuid.UUID{new(id1), nil},
	}
	for _, value := range values {
		oid := uint32(pgtype.UUIDOID)
		switch value.(type) {
		case []uuid.UUID, []*uuid.UUID:
			oid = pgtype.UUIDArrayOID
		}
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			want, err := def.Encode(oid, format, value, nil)
			require.NoError(t, err, "%#v", value)
			got, err := reg.Encode(oid, format, value, nil)
			require.NoError(t, err, "%#v", value)
			assert.Equal(t, want, got, "format %d, %#v", format, value)
		}
	}

	for _, m := range []*pgtype.Map{def, reg} {
		u := id1
		require.NoError(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, id2[:], &u))
		assert.Equal(t, id2, u)
		// NULL into a plain uuid.UUID: no error, the value is left alone
		// (google/uuid's Scan(nil)).
		require.NoError(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, nil, &u))
		assert.Equal(t, id2, u)
		require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, []byte{1, 2, 3}, &u))
	}
	// pgx plans again when a scan plan reports another target type.
	plan := reg.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, new(uuid.UUID))
	require.ErrorIs(t, plan.Scan(id1[:], new(string)), pgtype.ErrScanTargetTypeChanged)
}

// TestRoundTrip sends uuid values to PostgreSQL and scans them back, on
// connections with and without Register, in the binary format that pgx
// uses by default.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	for _, tm := range maps {
		t.Run(tm.name, func(t *testing.T) {
			ctx := t.Context()
			conn := connect(t, db, tm.register)
			table := pgx.Identifier{"ids_" + tm.name}.Sanitize()
			_, err := conn.Exec(ctx, "CREATE TABLE "+table+" (n int PRIMARY KEY, id uuid)")
			require.NoError(t, err)

			// uuid.UUID, uuid.Nil and *uuid.UUID (nil and not) into a
			// uuid column and back.
			inputs := []any{id1, uuid.Nil, new(id2), (*uuid.UUID)(nil)}
			for n, in := range inputs {
				_, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", n, in)
				require.NoError(t, err)
			}
			var text []*string
			require.NoError(t, conn.QueryRow(ctx, "SELECT array_agg(id::text ORDER BY n) FROM "+table).Scan(&text))
			require.Len(t, text, 4)
			assert.Equal(t, []string{id1.String(), uuid.Nil.String(), id2.String()}, []string{*text[0], *text[1], *text[2]})
			assert.Nil(t, text[3])

			rows, err := conn.Query(ctx, "SELECT id, id FROM "+table+" ORDER BY n")
			require.NoError(t, err)
			var vals []uuid.UUID
			var ptrs []*uuid.UUID
			for rows.Next() {
				var v uuid.UUID
				var p *uuid.UUID
				require.NoError(t, rows.Scan(&v, &p))
				vals, ptrs = append(vals, v), append(ptrs, p)
			}
			require.NoError(t, rows.Err())
			assert.Equal(t, []uuid.UUID{id1, uuid.Nil, id2, uuid.Nil}, vals)
			assert.Equal(t, []*uuid.UUID{new(id1), new(uuid.Nil), new(id2), nil}, ptrs)

			// A uuid parameter compared with a column.
			var n int
			require.NoError(t, conn.QueryRow(ctx, "SELECT n FROM "+table+" WHERE id = $1", id2).Scan(&n))
			assert.Equal(t, 2, n)

			// []uuid.UUID as a uuid[] and through unnest.
			ids := []uuid.UUID{id1, id2, uuid.Nil, id3}
			var back []uuid.UUID
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid[]", ids).Scan(&back))
			assert.Equal(t, ids, back)
			rows, err = conn.Query(ctx, "SELECT u FROM unnest($1::uuid[]) WITH ORDINALITY AS i (u, ord) ORDER BY ord", ids)
			require.NoError(t, err)
			back, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			require.NoError(t, err)
			assert.Equal(t, ids, back)
			require.NoError(t, conn.QueryRow(ctx, "SELECT array_agg(n ORDER BY n) FROM "+table+" WHERE id = ANY($1)", ids[:2]).Scan(&text))
			assert.Equal(t, []string{"0", "2"}, []string{*text[0], *text[1]})

			// Empty and nil slices: an empty array and NULL.
			var isNull bool
			var card int
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid[] IS NULL, cardinality($2::uuid[])", []uuid.UUID(nil), []uuid.UUID{}).Scan(&isNull, &card))
			assert.True(t, isNull)
			assert.Zero(t, card)

			// []*uuid.UUID with a NULL element, both ways.
			var ptrBack []*uuid.UUID
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid[]", []*uuid.UUID{new(id3), nil}).Scan(&ptrBack))
			assert.Equal(t, []*uuid.UUID{new(id3), nil}, ptrBack)

			// Other targets and values still go through pgx's own paths.
			var s string
			var pg pgtype.UUID
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid, $2::uuid", id1, pgtype.UUID{Bytes: id2, Valid: true}).Scan(&s, &pg))
			assert.Equal(t, id1.String(), s)
			assert.Equal(t, pgtype.UUID{Bytes: id2, Valid: true}, pg)
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid", id3.String()).Scan(&back[0]))
			assert.Equal(t, id3, back[0])
		})
	}
}

// TestScanNull scans NULL uuids and NULL array elements, in the binary and
// the text format, on connections with and without Register.
func TestScanNull(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	for _, tm := range maps {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
			t.Run(fmt.Sprintf("%s/%s", tm.name, mode), func(t *testing.T) {
				ctx := t.Context()
				conn := connect(t, db, tm.register)

				// NULL into uuid.UUID is no error and leaves the value as
				// it was (google/uuid's Scan(nil)); into *uuid.UUID and
				// **uuid.UUID it sets nil.
				u, p, pp := id1, new(id2), new(new(id3))
				require.NoError(t, conn.QueryRow(ctx, "SELECT NULL::uuid AS u, NULL::uuid AS p, NULL::uuid AS pp", mode).Scan(&u, &p, &pp))
				assert.Equal(t, id1, u)
				assert.Nil(t, p)
				assert.Nil(t, pp)

				var ptrs []*uuid.UUID
				var vals []uuid.UUID
				require.NoError(t, conn.QueryRow(ctx, "SELECT ARRAY[gen_random_uuid(), NULL], ARRAY[$1::uuid, NULL]", mode, id2).Scan(&ptrs, &vals))
				require.Len(t, ptrs, 2)
				require.NotNil(t, ptrs[0])
				assert.NotEqual(t, uuid.Nil, *ptrs[0])
				assert.Nil(t, ptrs[1])
				assert.Equal(t, []uuid.UUID{id2, uuid.Nil}, vals)

				vals = []uuid.UUID{id1}
				require.NoError(t, conn.QueryRow(ctx, "SELECT NULL::uuid[]", mode).Scan(&vals))
				assert.Nil(t, vals)
			})
		}
	}
}

// TestTextFormat sends and scans uuid values in the text format: the
// simple protocol, and text results requested in the extended protocol.
func TestTextFormat(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	for _, tm := range maps {
		t.Run(tm.name, func(t *testing.T) {
			ctx := t.Context()
			conn := connect(t, db, tm.register)
			ids := []uuid.UUID{id1, uuid.Nil, id3}
			for _, opt := range []any{pgx.QueryExecModeSimpleProtocol, pgx.QueryResultFormats{pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode}} {
				var u uuid.UUID
				var p *uuid.UUID
				var back []uuid.UUID
				require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid, $2::uuid, ARRAY[$1::uuid, $3::uuid, $4::uuid]", opt, id1, new(id2), ids[1], ids[2]).Scan(&u, &p, &back), "%v", opt)
				assert.Equal(t, id1, u)
				assert.Equal(t, new(id2), p)
				assert.Equal(t, ids, back)
			}
			// pgx cannot send a []uuid.UUID in the simple protocol, where
			// it does not know the parameter's type; Register leaves that
			// as it was.
			err := conn.QueryRow(ctx, "SELECT $1::uuid[]", pgx.QueryExecModeSimpleProtocol, ids).Scan(new([]uuid.UUID))
			require.ErrorContains(t, err, "cannot find encode plan")
		})
	}
}

// TestPgtestPools checks that the pools pgtest hands to tests have Register
// applied, so that every test exercises Codec.
func TestPgtestPools(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	conn, err := db.Pool.Acquire(t.Context())
	require.NoError(t, err)
	defer conn.Release()
	typ, ok := conn.Conn().TypeMap().TypeForOID(pgtype.UUIDOID)
	require.True(t, ok)
	assert.IsType(t, pgxcodec.UUIDCodec{}, typ.Codec)
}

// BenchmarkEncodeUUIDArray encodes a 64-element []uuid.UUID parameter in
// the binary format, as the batched statements send them, with pgx's own
// map and with Register applied.
func BenchmarkEncodeUUIDArray(b *testing.B) {
	ids := make([]uuid.UUID, 64)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, tm := range maps {
		b.Run(tm.name, func(b *testing.B) {
			m := newMap(tm.register)
			buf := make([]byte, 0, 2048)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
