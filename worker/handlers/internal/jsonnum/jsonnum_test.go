package jsonnum

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    string
		wantErr error
	}{
		{"6", "6", nil},
		{" -42 ", "-42", nil},
		{"123456789012345678901234567890123456789", "123456789012345678901234567890123456789", nil},
		{"6.0", "6", nil},
		{"1e30", "1000000000000000000000000000000", nil},
		{"1.5e1", "15", nil},
		{"6.5", "", ErrNotInteger},
		{"1e-3", "", ErrNotInteger},
		{`"6"`, "", ErrNotNumber},
		{"true", "", ErrNotNumber},
		{"null", "", ErrNotNumber},
		{"", "", ErrNotNumber},
		{"+6", "", ErrNotNumber},
		{"06", "", ErrNotNumber},
		{"0x10", "", ErrNotNumber},
		{"1e999999999", "", ErrNotNumber},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := Int(json.RawMessage(tt.raw))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}

func TestRat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    string
		wantErr bool
	}{
		{"29.99", "2999/100", false},
		{"209.97", "20997/100", false},
		{"0.1", "1/10", false},
		{"2.999e1", "2999/100", false},
		{"-1.25", "-5/4", false},
		{"1E+2", "100/1", false},
		{`"29.99"`, "", true},
		{"1.", "", true},
		{"{}", "", true},
		{"1e10001", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := Rat(json.RawMessage(tt.raw))
			if tt.wantErr {
				require.ErrorIs(t, err, ErrNotNumber)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}
