package api

import (
	"fmt"
	"unicode/utf8"
)

// Name limits: one set, checked at the door of every method that takes a
// client-chosen name, so a name the store cannot hold is refused with
// invalid_argument before it reaches a shared write (a bbolt key over its
// limit would otherwise fail a whole group commit). Names go into index
// keys with 0 as a separator, so none may hold a control character.
const (
	MaxClassNameLen     = 256  // event class names and subscription patterns
	MaxChannelLen       = 256  // channels (a byRoomId room, a custom channel)
	MaxEventIDLen       = 128  // client-supplied event ids
	MaxDurableLen       = 256  // durable cursor names
	MaxCommandNameLen   = 256  // command names
	MaxSchemaVersionLen = 64   // schemaVersion strings
	MaxModelNameLen     = 4096 // loaded model names (a path by default, so PATH_MAX)
)

// CheckName returns nil when s is a usable name for field: non-empty, at
// most max bytes, valid UTF-8, with no control character. Otherwise an
// invalid_argument error names the field and the limit it broke.
func CheckName(field, s string, max int) error {
	if err := NameProblem(s, max); err != nil {
		return Errorf(CodeInvalidArgument, "field %q %v", field, err)
	}
	return nil
}

// NameProblem is CheckName without the wire error: what is wrong with s, or
// nil, for callers that word their own error.
func NameProblem(s string, max int) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > max {
		return fmt.Errorf("is %d bytes long, over the limit of %d bytes", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("holds a control character (%U)", r)
		}
	}
	return nil
}
