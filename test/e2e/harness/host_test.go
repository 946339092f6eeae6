package harness

import (
	"math"
	"testing"
)

func TestParseMachineTicks(t *testing.T) {
	// A /proc/stat of a 2-core virtual machine: user nice system idle iowait
	// irq softirq steal guest guest_nice.
	const stat = `cpu  3632155 10 695251 3510380 36348 0 55037 53369 0 0
cpu0 1816077 5 347625 1755190 18174 0 27518 26684 0 0
intr 1 2 3
`
	got, err := parseMachineTicks(stat)
	if err != nil {
		t.Fatal(err)
	}
	busy := uint64(3632155 + 10 + 695251 + 55037)
	want := MachineTicks{Busy: busy, Steal: 53369, Total: busy + 3510380 + 36348 + 53369}
	if got != want {
		t.Errorf("parseMachineTicks = %+v, want %+v", got, want)
	}

	later := MachineTicks{Total: got.Total + 200, Busy: got.Busy + 150, Steal: got.Steal + 10}
	b, s := got.Percent(later)
	if math.Abs(b-75) > 1e-9 || math.Abs(s-5) > 1e-9 {
		t.Errorf("Percent = %v busy, %v steal; want 75, 5", b, s)
	}
	if b, s := got.Percent(got); b != 0 || s != 0 {
		t.Errorf("Percent over no time = %v, %v; want 0, 0", b, s)
	}

	for _, bad := range []string{"", "intr 1 2\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, err := parseMachineTicks(bad); err == nil {
			t.Errorf("parseMachineTicks(%q): no error", bad)
		}
	}
}

func TestReadMachineTicks(t *testing.T) {
	ticks, err := ReadMachineTicks()
	if err != nil {
		t.Fatal(err)
	}
	if ticks.Total == 0 || ticks.Busy > ticks.Total || ticks.Steal > ticks.Total {
		t.Errorf("implausible ticks %+v", ticks)
	}
}
