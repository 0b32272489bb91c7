package gguf

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// fixedSize is the encoded size of a scalar type; 0 for string and array.
func (t ValueType) fixedSize() int64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func (t ValueType) valid() bool { return t <= TypeFloat64 }

// TensorType is a ggml tensor element type.
type TensorType uint32

// The tensor types the writer produces; the reader knows the sizes of more.
const (
	TensorF32 TensorType = 0
	TensorF16 TensorType = 1
)

// typeSizes gives (elements per block, bytes per block) for the ggml types
// whose layout is settled. A type missing here is not rejected: its data size
// is not checked, and llama.cpp decides. The llama package's tests compare
// this table with ggml_blck_size/ggml_type_size of the pinned library.
var typeSizes = map[TensorType][2]int64{
	0:  {1, 4},     // F32
	1:  {1, 2},     // F16
	2:  {32, 18},   // Q4_0
	3:  {32, 20},   // Q4_1
	6:  {32, 22},   // Q5_0
	7:  {32, 24},   // Q5_1
	8:  {32, 34},   // Q8_0
	9:  {32, 36},   // Q8_1
	10: {256, 84},  // Q2_K
	11: {256, 110}, // Q3_K
	12: {256, 144}, // Q4_K
	13: {256, 176}, // Q5_K
	14: {256, 210}, // Q6_K
	15: {256, 292}, // Q8_K
	16: {256, 66},  // IQ2_XXS
	17: {256, 74},  // IQ2_XS
	18: {256, 98},  // IQ3_XXS
	19: {256, 50},  // IQ1_S
	20: {32, 18},   // IQ4_NL
	21: {256, 110}, // IQ3_S
	22: {256, 82},  // IQ2_S
	23: {256, 136}, // IQ4_XS
	24: {1, 1},     // I8
	25: {1, 2},     // I16
	26: {1, 4},     // I32
	27: {1, 8},     // I64
	28: {1, 8},     // F64
	29: {256, 56},  // IQ1_M
	30: {1, 2},     // BF16
	34: {256, 54},  // TQ1_0
	35: {256, 66},  // TQ2_0
	39: {32, 17},   // MXFP4
}

// TypeSize reports the block size (elements) and block byte size of a tensor
// type, and whether the type is known to this package.
func TypeSize(t TensorType) (blockElems, blockBytes int64, ok bool) {
	s, ok := typeSizes[t]
	return s[0], s[1], ok
}

// KnownTensorTypes lists the tensor types whose sizes this package knows.
func KnownTensorTypes() []TensorType {
	out := make([]TensorType, 0, len(typeSizes))
	for t := range typeSizes {
		out = append(out, t)
	}
	return out
}

// maxDims is GGML_MAX_DIMS.
const maxDims = 4
