package models

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseArray(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		in   string
		want []*string
		err  bool
	}{
		{in: "{}", want: []*string{}},
		{in: "{a}", want: []*string{s("a")}},
		{in: `{a,"b c",NULL,"NULL"}`, want: []*string{s("a"), s("b c"), nil, s("NULL")}},
		{in: `{"a\"b","c\\d",""}`, want: []*string{s(`a"b`), s(`c\d`), s("")}},
		{in: `{10.0.0.0/8,::1}`, want: []*string{s("10.0.0.0/8"), s("::1")}},
		{in: `[0:1]={x,y}`, want: []*string{s("x"), s("y")}},
		{in: `{"a,b",c}`, want: []*string{s("a,b"), s("c")}},
		{in: "", err: true},
		{in: "{a", err: true},
		{in: `{"a}`, err: true},
		{in: "{{1,2},{3,4}}", err: true},
		{in: `{"a"b}`, err: true},
	}
	for _, tt := range tests {
		got, err := parseArray(tt.in)
		if tt.err {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestStringArrayRoundTrip(t *testing.T) {
	for _, in := range []StringArray{nil, {}, {"a"}, {`q"uote`, `back\slash`, "comma,", "", "NULL", "{brace}", " spaced "}} {
		v, err := in.Value()
		require.NoError(t, err)
		var out StringArray
		require.NoError(t, out.Scan(v))
		if len(in) == 0 {
			assert.Empty(t, out)
			assert.Equal(t, "{}", v, "text[] columns are NOT NULL: nil is stored as {}")
			continue
		}
		assert.Equal(t, in, out)
	}
	var a StringArray
	require.Error(t, a.Scan("{a,NULL}"))
	b, err := json.Marshal(StringArray(nil))
	require.NoError(t, err)
	assert.JSONEq(t, "[]", string(b))
}

func TestFloat32ArrayRoundTrip(t *testing.T) {
	in := Float32Array{0, 1.5, -2.25e-7, math.MaxFloat32, float32(math.Inf(1))}
	v, err := in.Value()
	require.NoError(t, err)
	var out Float32Array
	require.NoError(t, out.Scan([]byte(v.(string))))
	assert.Equal(t, in, out)

	v, err = Float32Array(nil).Value()
	require.NoError(t, err)
	assert.Nil(t, v)
	require.NoError(t, out.Scan("{Infinity,-Infinity,NaN}"))
	assert.True(t, math.IsInf(float64(out[0]), 1) && math.IsInf(float64(out[1]), -1) && math.IsNaN(float64(out[2])))
	require.Error(t, out.Scan("{1,abc}"))
}

func TestJSONB(t *testing.T) {
	v, err := JSONB(nil).Value()
	require.NoError(t, err)
	assert.Nil(t, v)
	_, err = JSONB(`{bad`).Value()
	require.Error(t, err)

	var j JSONB
	buf := []byte(`{"a":1}`)
	require.NoError(t, j.Scan(buf))
	buf[2] = 'X' // the driver may reuse its buffer; Scan must copy
	assert.Equal(t, `{"a":1}`, string(j))

	type doc struct {
		J JSONB `json:"j"`
	}
	b, err := json.Marshal(doc{J: JSONB(`[1,2]`)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"j":[1,2]}`, string(b))
	var d doc
	require.NoError(t, json.Unmarshal([]byte(`{"j":null}`), &d))
	assert.Nil(t, d.J)
	require.NoError(t, json.Unmarshal([]byte(`{"j":{"x":true}}`), &d))
	assert.JSONEq(t, `{"x":true}`, string(d.J))
}

func TestNewIDIsV7(t *testing.T) {
	a, b := NewID(), NewID()
	assert.Equal(t, uuid.Version(7), a.Version())
	assert.NotEqual(t, a, b)
	assert.LessOrEqual(t, a.String()[:8], b.String()[:8], "time-ordered")
}
