package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
)

// Errors returned by [Validate] and [Read], wrapped with details; test them
// with errors.Is.
var (
	// ErrBadMagic: the file does not start with "GGUF".
	ErrBadMagic = errors.New("gguf: bad magic")
	// ErrUnsupportedVersion: a GGUF version other than 2 or 3.
	ErrUnsupportedVersion = errors.New("gguf: unsupported version")
	// ErrTruncated: the file ends before the header or a tensor's data does.
	ErrTruncated = errors.New("gguf: truncated file")
	// ErrImplausible: a count or length that cannot fit in the file.
	ErrImplausible = errors.New("gguf: implausible header")
	// ErrMalformed: an unknown type tag, a bad alignment, overlapping or
	// misaligned tensor offsets, and similar structural faults.
	ErrMalformed = errors.New("gguf: malformed file")
)

// Limits that keep a hostile header from making the reader allocate much.
const (
	maxKeyLen    = 1 << 16 // llama.cpp keys are short; 64 KiB is generous
	maxNameLen   = 1 << 16 // tensor names (GGML_MAX_NAME is 64)
	maxStringLen = 1 << 28 // one metadata string (a chat template, say)
	maxArrayNest = 2       // arrays of arrays are legal but rare; deeper is abuse
	maxCount     = 1 << 24 // metadata entries, tensors
	maxArrayLen  = 1 << 32 // elements of one array
)

// Info is what [Validate] learns from a file's header.
type Info struct {
	Version     uint32
	TensorCount uint64
	KVCount     uint64
	FileSize    int64
	// DataOffset is where tensor data starts (aligned).
	DataOffset int64
	Alignment  int64
	// Architecture is general.architecture ("llama", ...), Name general.name.
	Architecture string
	Name         string
	// Metadata holds every scalar and string value by key. Arrays are
	// summarised as [ArrayInfo] (their contents are skipped, not kept).
	Metadata map[string]any
	Tensors  []TensorInfo
	// TensorBytes is the sum of the tensors' data sizes (known types only).
	TensorBytes int64
}

// ArrayInfo stands in for an array value in [Info.Metadata].
type ArrayInfo struct {
	Type ValueType
	Len  uint64
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name string
	Dims []uint64
	Type TensorType
	// Offset is relative to [Info.DataOffset].
	Offset uint64
	// Size in bytes; -1 when the type is unknown to this package.
	Size int64
}

// Uint reads an integer metadata value of any integer type.
func (in Info) Uint(key string) (uint64, bool) {
	switch v := in.Metadata[key].(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8:
		return uint64(v), v >= 0
	case int16:
		return uint64(v), v >= 0
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// String reads a string metadata value.
func (in Info) String(key string) (string, bool) {
	s, ok := in.Metadata[key].(string)
	return s, ok
}

// Validate reads and checks the header of the GGUF file at path, and checks
// that every tensor's data lies inside the file. It reads the header region
// only, never the tensor data.
func Validate(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("gguf: %s is not a regular file", path)
	}
	info, err := Read(f, st.Size())
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Read parses a GGUF header from r, whose total length is size, with the
// same checks as [Validate].
func Read(r io.Reader, size int64) (Info, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 64<<10), size: size}
	info := Info{FileSize: size, Alignment: DefaultAlignment, Metadata: map[string]any{}}

	var magic [4]byte
	if err := d.full(magic[:], "magic"); err != nil {
		return info, err
	}
	if string(magic[:]) != Magic {
		return info, fmt.Errorf("%w: file starts with %q, want %q", ErrBadMagic, magic[:], Magic)
	}
	ver, err := d.u32("version")
	if err != nil {
		return info, err
	}
	info.Version = ver
	if ver != 2 && ver != 3 {
		return info, fmt.Errorf("%w: version %d (supported: 2, 3)", ErrUnsupportedVersion, ver)
	}
	if info.TensorCount, err = d.u64("tensor count"); err != nil {
		return info, err
	}
	if info.KVCount, err = d.u64("metadata count"); err != nil {
		return info, err
	}
	// Counts no real model reaches are implausible; counts that merely need
	// more bytes than the file holds mean it was cut short. The smallest
	// encodings: a KV is key length (8) + type (4) + one byte; a tensor
	// description is name length (8) + n_dims (4) + one dim (8) + type (4) +
	// offset (8). Nothing is sized from a count before this check.
	if info.KVCount > maxCount || info.TensorCount > maxCount {
		return info, fmt.Errorf("%w: %d metadata entries and %d tensors (limit %d each)",
			ErrImplausible, info.KVCount, info.TensorCount, maxCount)
	}
	if info.KVCount*13+info.TensorCount*32 > uint64(d.left()) {
		return info, fmt.Errorf("%w: %d metadata entries and %d tensors cannot fit in %d bytes",
			ErrTruncated, info.KVCount, info.TensorCount, size)
	}

	for i := uint64(0); i < info.KVCount; i++ {
		key, err := d.str("metadata key", maxKeyLen)
		if err != nil {
			return info, fmt.Errorf("metadata entry %d: %w", i, err)
		}
		t, err := d.u32("value type of " + key)
		if err != nil {
			return info, err
		}
		v, err := d.value(key, ValueType(t), 0)
		if err != nil {
			return info, err
		}
		info.Metadata[key] = v
	}
	info.Architecture, _ = info.String("general.architecture")
	info.Name, _ = info.String("general.name")
	if a, ok := info.Metadata["general.alignment"]; ok {
		av, ok := a.(uint32)
		if !ok || av == 0 || av&(av-1) != 0 {
			return info, fmt.Errorf("%w: general.alignment %v is not a power of two uint32", ErrMalformed, a)
		}
		info.Alignment = int64(av)
	}

	info.Tensors = make([]TensorInfo, 0, min(info.TensorCount, 4096))
	for i := uint64(0); i < info.TensorCount; i++ {
		ti, err := d.tensorInfo(i)
		if err != nil {
			return info, err
		}
		info.Tensors = append(info.Tensors, ti)
	}
	info.DataOffset = alignUp(d.pos, info.Alignment)
	if info.DataOffset > size && info.TensorCount > 0 {
		return info, fmt.Errorf("%w: tensor data would start at %d, file has %d bytes", ErrTruncated, info.DataOffset, size)
	}
	for _, t := range info.Tensors {
		if t.Offset%uint64(info.Alignment) != 0 {
			return info, fmt.Errorf("%w: tensor %q offset %d is not aligned to %d", ErrMalformed, t.Name, t.Offset, info.Alignment)
		}
		if t.Size < 0 {
			continue
		}
		end := uint64(info.DataOffset) + t.Offset + uint64(t.Size)
		if t.Offset > uint64(size) || end > uint64(size) {
			return info, fmt.Errorf("%w: tensor %q needs bytes up to %d, file has %d", ErrTruncated, t.Name, end, size)
		}
		info.TensorBytes += t.Size
	}
	return info, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// decoder reads little-endian values and tracks the position so every
// length can be checked against the bytes left.
type decoder struct {
	r    *bufio.Reader
	size int64
	pos  int64
	buf  [8]byte
}

func (d *decoder) left() int64 { return d.size - d.pos }

func (d *decoder) full(p []byte, what string) error {
	if int64(len(p)) > d.left() {
		return fmt.Errorf("%w: %s at offset %d needs %d bytes, file has %d", ErrTruncated, what, d.pos, len(p), d.size)
	}
	n, err := io.ReadFull(d.r, p)
	d.pos += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s at offset %d", ErrTruncated, what, d.pos)
		}
		return err
	}
	return nil
}

func (d *decoder) skip(n int64, what string) error {
	if n > d.left() {
		return fmt.Errorf("%w: %s at offset %d needs %d bytes, file has %d", ErrTruncated, what, d.pos, n, d.size)
	}
	m, err := d.r.Discard(int(n))
	d.pos += int64(m)
	if err != nil {
		return fmt.Errorf("%w: %s at offset %d", ErrTruncated, what, d.pos)
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.full(d.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(d.buf[:4]), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.full(d.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(d.buf[:8]), nil
}

func (d *decoder) strLen(what string, limit uint64) (uint64, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, fmt.Errorf("%w: %s of %d bytes at offset %d (limit %d)", ErrImplausible, what, n, d.pos, limit)
	}
	if n > uint64(d.left()) {
		return 0, fmt.Errorf("%w: %s of %d bytes at offset %d, file has %d bytes left", ErrTruncated, what, n, d.pos, d.left())
	}
	return n, nil
}

func (d *decoder) str(what string, limit uint64) (string, error) {
	n, err := d.strLen(what, limit)
	if err != nil {
		return "", err
	}
	b := make([]byte, n) // n checked against the bytes left and limit
	if err := d.full(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *decoder) value(key string, t ValueType, depth int) (any, error) {
	if !t.valid() {
		return nil, fmt.Errorf("%w: key %q has unknown value type %d", ErrMalformed, key, t)
	}
	switch t {
	case TypeString:
		return d.str("value of "+key, maxStringLen)
	case TypeArray:
		if depth >= maxArrayNest {
			return nil, fmt.Errorf("%w: key %q nests arrays too deep", ErrMalformed, key)
		}
		et, err := d.u32("array type of " + key)
		if err != nil {
			return nil, err
		}
		n, err := d.u64("array length of " + key)
		if err != nil {
			return nil, err
		}
		elem := ValueType(et)
		if !elem.valid() {
			return nil, fmt.Errorf("%w: key %q is an array of unknown type %d", ErrMalformed, key, et)
		}
		minSize := elem.fixedSize()
		if minSize == 0 {
			minSize = 8 // a string or nested array header
		}
		if n > maxArrayLen {
			return nil, fmt.Errorf("%w: array %q of %d elements (limit %d)", ErrImplausible, key, n, uint64(maxArrayLen))
		}
		if n > uint64(d.left())/uint64(minSize) {
			return nil, fmt.Errorf("%w: array %q of %d elements cannot fit in the %d bytes left", ErrTruncated, key, n, d.left())
		}
		if fs := elem.fixedSize(); fs > 0 {
			if err := d.skip(int64(n)*fs, "array "+key); err != nil {
				return nil, err
			}
		} else {
			for i := uint64(0); i < n; i++ {
				if elem == TypeString {
					l, err := d.strLen("element of "+key, maxStringLen)
					if err != nil {
						return nil, err
					}
					if err := d.skip(int64(l), "element of "+key); err != nil {
						return nil, err
					}
					continue
				}
				if _, err := d.value(key, elem, depth+1); err != nil {
					return nil, err
				}
			}
		}
		return ArrayInfo{Type: elem, Len: n}, nil
	}
	if err := d.full(d.buf[:t.fixedSize()], "value of "+key); err != nil {
		return nil, err
	}
	b := d.buf[:]
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeBool:
		return b[0] != 0, nil
	case TypeUint16:
		return binary.LittleEndian.Uint16(b), nil
	case TypeInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case TypeUint32:
		return binary.LittleEndian.Uint32(b), nil
	case TypeInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case TypeFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case TypeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case TypeInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // TypeFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

func (d *decoder) tensorInfo(i uint64) (TensorInfo, error) {
	name, err := d.str(fmt.Sprintf("tensor %d name", i), maxNameLen)
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := d.u32("n_dims of " + name)
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > maxDims {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q has %d dimensions (1..%d allowed)", ErrMalformed, name, nd, maxDims)
	}
	ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	elems := uint64(1)
	overflow := false
	for j := range ti.Dims {
		if ti.Dims[j], err = d.u64("dims of " + name); err != nil {
			return ti, err
		}
		if ti.Dims[j] == 0 {
			return ti, fmt.Errorf("%w: tensor %q has a zero dimension", ErrMalformed, name)
		}
		hi, lo := bits.Mul64(elems, ti.Dims[j])
		if hi != 0 || lo > math.MaxInt64 {
			overflow = true
		}
		elems = lo
	}
	t, err := d.u32("type of " + name)
	if err != nil {
		return ti, err
	}
	ti.Type = TensorType(t)
	if ti.Offset, err = d.u64("offset of " + name); err != nil {
		return ti, err
	}
	ti.Size = -1
	if be, bb, ok := TypeSize(ti.Type); ok {
		if overflow || elems/uint64(be) > uint64(d.size)/uint64(bb) {
			return ti, fmt.Errorf("%w: tensor %q of shape %v is larger than the file (%d bytes)", ErrTruncated, name, ti.Dims, d.size)
		}
		if ti.Dims[0]%uint64(be) != 0 {
			return ti, fmt.Errorf("%w: tensor %q row of %d elements is not a multiple of its block size %d", ErrMalformed, name, ti.Dims[0], be)
		}
		ti.Size = int64(elems/uint64(be)) * bb
	}
	return ti, nil
}
