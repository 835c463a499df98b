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

func TestVectorRoundTrip(t *testing.T) {
	in := Vector{0, 1.5, -2.25e-7, math.MaxFloat32, float32(math.Inf(1)), float32(math.Copysign(0, -1))}
	v, err := in.Value()
	require.NoError(t, err)
	b := v.([]byte)
	// Little-endian float32, as migration 00011 converted real[] values.
	assert.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0xc0, 0x3f}, b[:8])
	var out Vector
	require.NoError(t, out.Scan(b))
	assert.Equal(t, in, out)
	b[4] = 0xff
	assert.Equal(t, float32(1.5), out[1], "Scan copies")
	assert.True(t, math.Signbit(float64(out[5])))

	v, err = Vector(nil).Value()
	require.NoError(t, err)
	assert.Nil(t, v)
	require.NoError(t, out.Scan(nil))
	assert.Nil(t, out)
	require.NoError(t, out.Scan([]byte{}))
	assert.Equal(t, Vector{}, out)
	require.Error(t, out.Scan([]byte{1, 2, 3}))
	require.Error(t, out.Scan(42))
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
