package main

import (
	"strings"
	"testing"
)

// The records below are as PostgreSQL 15's pg_waldump prints them.
const sampleWALDump = `rmgr: Heap        len (rec/tot):     54/    54, tx:        735, lsn: 0/01A6C1E8, prev 0/01A6C1A0, desc: LOCK off 3: xid 735: flags 0x00 LOCK_ONLY EXCL_LOCK , blkref #0: rel 1663/16384/16420 blk 12
rmgr: Btree       len (rec/tot):     64/    64, tx:        735, lsn: 0/01A6C220, prev 0/01A6C1E8, desc: INSERT_LEAF off 2, blkref #0: rel 1663/16384/16425 blk 1
rmgr: Btree       len (rec/tot):     72/    72, tx:        736, lsn: 0/01A6C260, prev 0/01A6C220, desc: INSERT_LEAF off 3, blkref #0: rel 1663/16384/16425 blk 1
rmgr: Heap        len (rec/tot):     79/  7987, tx:        736, lsn: 0/01A6C2A8, prev 0/01A6C260, desc: INSERT+INIT off 1 flags 0x00, blkref #0: rel 1663/16384/99999 blk 0 FPW
rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/01A6E1F0, prev 0/01A6C2A8, desc: COMMIT 2026-11-26 18:30:00.000000 UTC
pg_waldump: error: error in WAL record at 0/4836000: invalid record length
`

func TestCountWALKinds(t *testing.T) {
	names := map[string]string{"16420": "tasker.workflow_steps", "16425": "tasker.workflow_steps_pkey"}
	got := countWALKinds(strings.NewReader(sampleWALDump), names)
	want := []walKind{
		{kind: "Btree/INSERT_LEAF", relation: "tasker.workflow_steps_pkey", records: 2, bytes: 136},
		{kind: "Heap/INSERT+INIT", relation: "file node 99999", records: 1, bytes: 7987},
		{kind: "Heap/LOCK", relation: "tasker.workflow_steps", records: 1, bytes: 54},
		{kind: "Transaction/COMMIT", relation: "", records: 1, bytes: 34},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d kinds, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("kind %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
