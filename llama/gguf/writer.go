package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer assembles a GGUF v3 file in memory-light form: metadata is kept as
// encoded bytes, tensors as float32 slices, and [Writer.WriteTo] streams the
// file out. Keys and tensors are written in the order they were added.
type Writer struct {
	kv      []byte
	nkv     uint64
	tensors []tensor
	err     error
}

type tensor struct {
	name string
	dims []uint64
	data []float32
}

// NewWriter returns an empty writer.
func NewWriter() *Writer { return &Writer{} }

func (w *Writer) putStr(s string) {
	w.kv = binary.LittleEndian.AppendUint64(w.kv, uint64(len(s)))
	w.kv = append(w.kv, s...)
}

func (w *Writer) key(k string, t ValueType) {
	w.putStr(k)
	w.kv = binary.LittleEndian.AppendUint32(w.kv, uint32(t))
	w.nkv++
}

// AddString adds a string value.
func (w *Writer) AddString(key, v string) { w.key(key, TypeString); w.putStr(v) }

// AddUint32 adds a uint32 value.
func (w *Writer) AddUint32(key string, v uint32) {
	w.key(key, TypeUint32)
	w.kv = binary.LittleEndian.AppendUint32(w.kv, v)
}

// AddInt32 adds an int32 value.
func (w *Writer) AddInt32(key string, v int32) {
	w.key(key, TypeInt32)
	w.kv = binary.LittleEndian.AppendUint32(w.kv, uint32(v))
}

// AddFloat32 adds a float32 value.
func (w *Writer) AddFloat32(key string, v float32) {
	w.key(key, TypeFloat32)
	w.kv = binary.LittleEndian.AppendUint32(w.kv, math.Float32bits(v))
}

// AddBool adds a bool value.
func (w *Writer) AddBool(key string, v bool) {
	w.key(key, TypeBool)
	b := byte(0)
	if v {
		b = 1
	}
	w.kv = append(w.kv, b)
}

func (w *Writer) arrayHead(key string, t ValueType, n int) {
	w.key(key, TypeArray)
	w.kv = binary.LittleEndian.AppendUint32(w.kv, uint32(t))
	w.kv = binary.LittleEndian.AppendUint64(w.kv, uint64(n))
}

// AddStringArray adds an array of strings.
func (w *Writer) AddStringArray(key string, v []string) {
	w.arrayHead(key, TypeString, len(v))
	for _, s := range v {
		w.putStr(s)
	}
}

// AddFloat32Array adds an array of float32.
func (w *Writer) AddFloat32Array(key string, v []float32) {
	w.arrayHead(key, TypeFloat32, len(v))
	for _, f := range v {
		w.kv = binary.LittleEndian.AppendUint32(w.kv, math.Float32bits(f))
	}
}

// AddInt32Array adds an array of int32.
func (w *Writer) AddInt32Array(key string, v []int32) {
	w.arrayHead(key, TypeInt32, len(v))
	for _, x := range v {
		w.kv = binary.LittleEndian.AppendUint32(w.kv, uint32(x))
	}
}

// AddTensorF32 adds an F32 tensor. dims are in ggml order (the fastest
// varying dimension first); len(data) must be their product.
func (w *Writer) AddTensorF32(name string, dims []uint64, data []float32) {
	n := uint64(1)
	for _, d := range dims {
		n *= d
	}
	if w.err == nil && (n != uint64(len(data)) || len(dims) == 0 || len(dims) > maxDims) {
		w.err = fmt.Errorf("gguf: tensor %q: %d values for shape %v", name, len(data), dims)
	}
	w.tensors = append(w.tensors, tensor{name: name, dims: append([]uint64(nil), dims...), data: data})
}

// WriteTo writes the file: header, metadata, tensor descriptions, padding,
// and the tensor data, each tensor aligned to [DefaultAlignment].
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 256<<10)
	var hdr []byte
	hdr = append(hdr, Magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, 3)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(w.tensors)))
	hdr = binary.LittleEndian.AppendUint64(hdr, w.nkv)
	hdr = append(hdr, w.kv...)
	var off uint64
	for _, t := range w.tensors {
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(t.name)))
		hdr = append(hdr, t.name...)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(t.dims)))
		for _, d := range t.dims {
			hdr = binary.LittleEndian.AppendUint64(hdr, d)
		}
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(TensorF32))
		hdr = binary.LittleEndian.AppendUint64(hdr, off)
		off += uint64(alignUp(int64(len(t.data))*4, DefaultAlignment))
	}
	pad := alignUp(int64(len(hdr)), DefaultAlignment) - int64(len(hdr))
	hdr = append(hdr, make([]byte, pad)...)
	if _, err := bw.Write(hdr); err != nil {
		return cw.n, err
	}
	var b [4]byte
	for _, t := range w.tensors {
		for _, f := range t.data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(f))
			if _, err := bw.Write(b[:]); err != nil {
				return cw.n, err
			}
		}
		n := int64(len(t.data)) * 4
		if p := alignUp(n, DefaultAlignment) - n; p > 0 {
			if _, err := bw.Write(make([]byte, p)); err != nil {
				return cw.n, err
			}
		}
	}
	err := bw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
