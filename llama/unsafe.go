package llama

import "unsafe"

// uintptrOf is the address of a slice's first element, for C structs that
// carry pointers as integers. The caller keeps the slice alive
// (runtime.KeepAlive) until C no longer uses it; Go's collector does not
// move heap objects, so the address stays valid while the slice lives.
func uintptrOf(s []int32) uintptr {
	if len(s) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&s[0]))
}
