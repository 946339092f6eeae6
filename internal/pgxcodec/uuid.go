package pgxcodec

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Without UUIDCodec pgx knows uuid.UUID only through database/sql's
// interfaces: it encodes each parameter by calling its driver.Valuer (a
// 36-character string) and parsing that string back into bytes, and it
// scans each column by formatting the bytes as a string for the sql.Scanner
// to parse. Arrays ([]uuid.UUID parameters of batched statements) pay that
// for every element. pgx looks for sql.Scanner before trying its
// TryWrapScanPlanFuncs, so only the codec registered for the uuid OID can
// take these values over.

// registerUUID registers the uuid type with UUIDCodec and the uuid[] type
// with an ArrayCodec over it: the uuid[] type of a new Map refers to pgx's
// own uuid type, whose codec would still scan the elements.
func registerUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: UUIDCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}

// UUIDCodec is pgtype.UUIDCodec with binary plans for uuid.UUID values and
// *uuid.UUID targets. Everything else — the text format, pgtype.UUID,
// strings — goes to the embedded codec and on through pgx as before.
type UUIDCodec struct {
	pgtype.UUIDCodec
}

// PlanEncode returns a plan copying the 16 bytes of a uuid.UUID or a
// *uuid.UUID in the binary format, or else the embedded codec's plan.
func (c UUIDCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.BinaryFormatCode {
		switch value.(type) {
		case uuid.UUID:
			return encodePlanUUID{}
		case *uuid.UUID:
			return encodePlanUUIDPointer{}
		}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

// PlanScan returns a plan copying a binary uuid into a *uuid.UUID, or else
// the embedded codec's plan.
func (c UUIDCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanPlanUUID{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// encodePlanUUID encodes a uuid.UUID in the binary format.
type encodePlanUUID struct{}

// Encode appends the 16 bytes of value, a uuid.UUID.
func (encodePlanUUID) Encode(value any, buf []byte) ([]byte, error) {
	u, ok := value.(uuid.UUID)
	if !ok {
		return nil, fmt.Errorf("pgxcodec: cannot encode %T as uuid.UUID", value)
	}
	return append(buf, u[:]...), nil
}

// encodePlanUUIDPointer encodes a *uuid.UUID in the binary format, nil as
// NULL (pgx normally sends a nil pointer as NULL before planning).
type encodePlanUUIDPointer struct{}

// Encode appends the 16 bytes value points to, or returns nil (NULL) when
// it is nil.
func (encodePlanUUIDPointer) Encode(value any, buf []byte) ([]byte, error) {
	u, ok := value.(*uuid.UUID)
	if !ok {
		return nil, fmt.Errorf("pgxcodec: cannot encode %T as *uuid.UUID", value)
	}
	if u == nil {
		return nil, nil
	}
	return append(buf, u[:]...), nil
}

// scanPlanUUID scans a binary uuid into a *uuid.UUID.
type scanPlanUUID struct{}

// Scan copies src into target. NULL leaves the target unchanged and is not
// an error, as with uuid.UUID's sql.Scanner (which pgx called before); a
// *uuid.UUID field that should become nil needs a **uuid.UUID target.
func (scanPlanUUID) Scan(src []byte, target any) error {
	u, ok := target.(*uuid.UUID)
	if !ok {
		return pgtype.ErrScanTargetTypeChanged
	}
	if src == nil {
		return nil
	}
	if len(src) != len(uuid.UUID{}) {
		return fmt.Errorf("invalid length for uuid: %d", len(src))
	}
	copy(u[:], src)
	return nil
}
