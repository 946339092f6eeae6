package jsonb

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, wantErr string
	}{
		{"plain object", `{"a": "b", "n": 1}`, ""},
		{"escaped backslash before u0000 is text", `{"a": "\\u0000 is text here"}`, ""},
		{"surrogate pair", `{"a": "\ud83d\ude00"}`, ""},
		{"big but storable numbers", `{"a": 1e100, "b": 123456789012345678901234567890, "c": 1.5e-300}`, ""},
		{"NUL in a value", `{"a": {"b": ["x", "y\u0000z"]}}`, `$.a.b[1]: contains the NUL character`},
		{"NUL in a key", `{"k\u0000": 1}`, `$."k\x00": contains the NUL character`},
		{"NUL at the root", `"\u0000"`, `$: contains the NUL character`},
		{"lone high surrogate", `{"a": "\ud800"}`, `unpaired UTF-16 surrogate escape (\ud800)`},
		{"high surrogate followed by a non-surrogate", `{"a": "\ud800\u0041"}`, `unpaired UTF-16 surrogate`},
		{"lone low surrogate", `["\uDC00"]`, `unpaired UTF-16 surrogate escape (\uDC00)`},
		{"invalid UTF-8", "{\"a\": \"\xff\"}", `$: not valid UTF-8`},
		{"huge exponent", `{"n": 1e200000}`, `$.n: is a number outside PostgreSQL's numeric range`},
		{"tiny exponent", `[1e-20000]`, `$[0]: is a number outside PostgreSQL's numeric range`},
		{"invalid JSON", `{"a":`, `not valid JSON`},
		{"two values", `{} {}`, `more than one value`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check([]byte(tc.doc))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestCheckLongNumbers(t *testing.T) {
	t.Parallel()
	require.NoError(t, Check([]byte(strings.Repeat("9", maxIntegerDigits))))
	require.Error(t, Check([]byte(strings.Repeat("9", maxIntegerDigits+1))))
	require.NoError(t, Check([]byte("0."+strings.Repeat("1", maxFractionDigits))))
	require.Error(t, Check([]byte("0."+strings.Repeat("1", maxFractionDigits+1))))
}

// TestPlainlyStorableAgreesWithDecoding checks the fast path against the
// decoding check: whatever plainlyStorable accepts, checkDecoded accepts
// too, and the documents it passes on are the ones that need decoding.
func TestPlainlyStorableAgreesWithDecoding(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("7", maxFractionDigits)
	cases := []struct {
		doc   string
		plain bool
	}{
		{`{"value": "36", "step": "diamond_end", "inputs": ["a", "b"], "n": -12.5}`, true},
		{`[true, false, null, 0, -0.25, "1e5 in text", {"e": "E"}]`, true},
		{` {"a": []} `, true},
		{`{"n": ` + long + `}`, true},
		{`{"n": ` + long + `7}`, false}, // longer than any fraction may be
		{`{"n": 0.` + long + `1}`, false},
		{`{"n": 1e5}`, false},
		{`{"n": 2.E-3}`, false},
		{`{"a": "tab\tescaped"}`, false},
		{`{"a": "\u0000"}`, false},
		{`{"a":`, false},
		{`{} {}`, false},
		{"{\"a\": \"raw\ttab\"}", false}, // control characters are not valid JSON
	}
	for _, tc := range cases {
		require.Equal(t, tc.plain, plainlyStorable([]byte(tc.doc)), tc.doc)
		if tc.plain {
			require.NoError(t, checkDecoded([]byte(tc.doc)), tc.doc)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, seed := range []string{`{}`, `"\ud800"`, `{"a":[1,2,{"b":"\u0000"}]}`, `1e99999`, "\xff", `[1.5, "x", true]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		_ = Check(doc) // must never panic
		// The fast path never accepts what decoding refuses.
		if utf8.Valid(doc) && plainlyStorable(doc) {
			require.NoError(t, checkDecoded(doc))
		}
	})
}

// BenchmarkCheck measures Check on a typical step result, which takes the
// fast path, and the decoding check it replaces for such documents.
func BenchmarkCheck(b *testing.B) {
	doc := []byte(`{"value": "429981696", "step": "diamond_branch_b", "operation": "square", "inputs": ["diamond_start"]}`)
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Check(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoding", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := checkDecoded(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
