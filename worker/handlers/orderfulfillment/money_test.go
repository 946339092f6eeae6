package orderfulfillment

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCentsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		cents   Cents
		out     string
		wantErr bool
	}{
		{"209.97", 20997, "209.97", false},
		{"29.99", 2999, "29.99", false},
		{"15", 1500, "15.00", false},
		{"0.1", 10, "0.10", false},
		{"0", 0, "0.00", false},
		{"-0.05", -5, "-0.05", false},
		{"1.4999e2", 14999, "149.99", false},
		{"29.999", 0, "", true},
		{`"29.99"`, 0, "", true},
		{"1e30", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var c Cents
			err := json.Unmarshal([]byte(tt.in), &c)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.cents, c)
			out, err := json.Marshal(c)
			require.NoError(t, err)
			require.Equal(t, tt.out, string(out))
		})
	}
}

func TestCentsPercentRoundsHalfUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount Cents
		want   Cents
	}{
		{20997, 609}, // 608.913 cents
		{500, 15},    // 14.5 cents: half rounds up
		{1500, 44},   // 43.5 cents
		{1000, 29},   // exact
		{17, 0},      // 0.493 cents
		{18, 1},      // 0.522 cents
		{0, 0},
		{-500, -15}, // half rounds away from zero
	}
	for _, tt := range tests {
		t.Run(tt.amount.String(), func(t *testing.T) {
			t.Parallel()
			got, err := tt.amount.Percent(GatewayFeePerMille)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestAddBusinessDays(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2025, time.January, d, 18, 0, 0, 0, time.UTC) }
	tests := []struct {
		name  string
		from  time.Time
		days  int
		wantD int
	}{
		{"Monday + 1", day(6), 1, 7},
		{"Monday + 5", day(6), 5, 13},
		{"Friday + 1", day(3), 1, 6},
		{"Friday + 2", day(3), 2, 7},
		{"Saturday + 1", day(4), 1, 6},
		{"Sunday + 5", day(5), 5, 10},
		{"zero", day(4), 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, day(tt.wantD), addBusinessDays(tt.from, tt.days))
		})
	}
}
