package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/pgcluster"
)

// walKind is one kind of WAL record written to one relation (Heap/LOCK on
// tasker.workflow_steps, say) and how many of the measured part's records
// it was.
type walKind struct {
	kind, relation string
	records, bytes int64
}

// printWALKinds prints the WAL records written between two positions by
// kind and relation, per step, from pg_waldump over the cluster's own WAL:
// which row writes, index insertions and row locks a step costs, and where.
// It prints why instead when pg_waldump is not there or cannot read the
// range.
func printWALKinds(ctx context.Context, w io.Writer, db *pgx.Conn, cluster *pgcluster.Cluster, start, end string, steps float64) {
	kinds, err := readWALKinds(ctx, db, cluster, start, end)
	if err != nil {
		fmt.Fprintf(w, "\nWAL records by kind: not available (%v)\n", err)
		return
	}
	var total int64
	for _, k := range kinds {
		total += k.records
	}
	fmt.Fprintf(w, "\nWAL records by kind and relation (pg_waldump, %s to %s; kinds under 0.05 per step left out):\n", start, end)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PER STEP\tRECORDS\tBYTES/STEP\tKIND\tRELATION")
	for _, k := range kinds {
		if float64(k.records)/steps < 0.05 {
			continue
		}
		fmt.Fprintf(tw, "%.2f\t%d\t%.0f\t%s\t%s\n", float64(k.records)/steps, k.records, float64(k.bytes)/steps, k.kind, k.relation)
	}
	fmt.Fprintf(tw, "%.2f\t%d\t\tall\t\n", float64(total)/steps, total)
	_ = tw.Flush()
}

// readWALKinds runs pg_waldump from start to end and counts its records by
// kind and the relation of their first block, named from pg_class.
func readWALKinds(ctx context.Context, db *pgx.Conn, cluster *pgcluster.Cluster, start, end string) ([]walKind, error) {
	names, err := relationNames(ctx, db)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(cluster.BinDir(), "pg_waldump"), //nolint:gosec // the server's own tools
		"--path", filepath.Join(cluster.DataDir(), "pg_wal"), "--start", start, "--end", end)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	kinds := countWALKinds(out, names)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("pg_waldump: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return kinds, nil
}

// relationNames maps each relation's file node to its qualified name.
func relationNames(ctx context.Context, db *pgx.Conn) (map[string]string, error) {
	rows, err := db.Query(ctx, tag+`SELECT pg_relation_filenode(c.oid)::text, n.nspname || '.' || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pg_relation_filenode(c.oid) IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	var node, name string
	_, err = pgx.ForEachRow(rows, []any{&node, &name}, func() error {
		names[node] = name
		return nil
	})
	return names, err
}

// walLine matches one record as pg_waldump prints it:
//
//	rmgr: Heap        len (rec/tot):     54/    54, tx: 771, lsn: 0/01A6C1E8, prev 0/01A6C1A0, desc: LOCK off 3: ..., blkref #0: rel 1663/16384/16420 blk 12
var walLine = regexp.MustCompile(`^rmgr: (\S+)\s+len \(rec/tot\):\s*\d+/\s*(\d+),.*desc: ([A-Z0-9_+]+)(?:.*?blkref #0: rel \d+/\d+/(\d+))?`)

// countWALKinds reads pg_waldump's records and counts them, most first.
func countWALKinds(r io.Reader, names map[string]string) []walKind {
	byKey := map[[2]string]*walKind{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := walLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		kind := m[1] + "/" + m[3]
		relation := names[m[4]]
		if relation == "" && m[4] != "" {
			relation = "file node " + m[4]
		}
		k := byKey[[2]string{kind, relation}]
		if k == nil {
			k = &walKind{kind: kind, relation: relation}
			byKey[[2]string{kind, relation}] = k
		}
		k.records++
		size, _ := strconv.ParseInt(m[2], 10, 64) // \d+ in walLine
		k.bytes += size
	}
	kinds := make([]walKind, 0, len(byKey))
	for _, k := range byKey {
		kinds = append(kinds, *k)
	}
	slices.SortFunc(kinds, func(a, b walKind) int {
		if a.records != b.records {
			return int(b.records - a.records)
		}
		return strings.Compare(a.kind+a.relation, b.kind+b.relation)
	})
	return kinds
}
