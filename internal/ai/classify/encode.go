package classify

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The binary form stores each weight row as int8 with one float32 scale
// (a quarter of float32's size; the argmax and the calibrated
// probabilities barely move), and feature hashes as deltas, gzipped.
const codecVersion = 1

// MarshalBinary encodes m compactly.
func (m *Model) MarshalBinary() ([]byte, error) {
	var raw bytes.Buffer
	w := func(v any) { _ = binary.Write(&raw, binary.LittleEndian, v) }
	k := len(m.Labels)
	w(uint8(codecVersion))
	w(uint32(k))
	for _, l := range m.Labels {
		w(uint32(len(l)))
		raw.WriteString(l)
	}
	w(m.Temperature)
	w(uint32(m.Examples))
	w(m.Bias)
	w(uint32(len(m.Keys)))
	var prev uint64
	var buf [binary.MaxVarintLen64]byte
	for _, key := range m.Keys {
		n := binary.PutUvarint(buf[:], key-prev)
		raw.Write(buf[:n])
		prev = key
	}
	q := make([]int8, k)
	for i := range m.Keys {
		row := m.Weights[i*k : (i+1)*k]
		var hi float32
		for _, x := range row {
			hi = max(hi, float32(math.Abs(float64(x))))
		}
		scale := hi / 127
		for c, x := range row {
			if scale > 0 {
				q[c] = int8(math.Round(float64(x / scale)))
			} else {
				q[c] = 0
			}
		}
		w(scale)
		w(q)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("classify: encode: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("classify: encode: %w", err)
	}
	return out.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (m *Model) UnmarshalBinary(data []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("classify: decode: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 512<<20))
	if err != nil {
		return fmt.Errorf("classify: decode: %w", err)
	}
	r := bytes.NewReader(raw)
	var rerr error
	rd := func(v any) {
		if rerr == nil {
			rerr = binary.Read(r, binary.LittleEndian, v)
		}
	}
	var version uint8
	var k, n uint32
	rd(&version)
	if rerr == nil && version != codecVersion {
		return fmt.Errorf("classify: decode: unknown version %d", version)
	}
	rd(&k)
	if rerr != nil || k > 1<<16 {
		return fmt.Errorf("classify: decode: bad header: %v", rerr)
	}
	labels := make([]string, k)
	for i := range labels {
		var l uint32
		rd(&l)
		if rerr != nil || int(l) > r.Len() {
			return errors.New("classify: decode: bad label")
		}
		b := make([]byte, l)
		_, _ = io.ReadFull(r, b)
		labels[i] = string(b)
	}
	var temp float64
	var examples uint32
	rd(&temp)
	rd(&examples)
	bias := make([]float32, k)
	rd(bias)
	rd(&n)
	if rerr != nil || int(n) > r.Len() {
		return fmt.Errorf("classify: decode: bad sizes: %v", rerr)
	}
	keys := make([]uint64, n)
	var prev uint64
	for i := range keys {
		d, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("classify: decode: keys: %w", err)
		}
		prev += d
		keys[i] = prev
	}
	weights := make([]float32, int(n)*int(k))
	q := make([]int8, k)
	for i := range keys {
		var scale float32
		rd(&scale)
		rd(q)
		for c, x := range q {
			weights[i*int(k)+c] = float32(x) * scale
		}
	}
	if rerr != nil {
		return fmt.Errorf("classify: decode: %w", rerr)
	}
	*m = Model{Labels: labels, Keys: keys, Weights: weights, Bias: bias, Temperature: temp, Examples: int(examples)}
	return nil
}
