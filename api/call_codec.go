package api

import (
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// decodeParams reads commands/handle's params, a provider's first cost per
// call of a command it provides, without reflection. The caller's params stay
// raw (a sub-slice of b), as an interface field does under DecodeParams.
func (p *HandleParams) decodeParams(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c := b[0]; c != msgpcode.Nil && !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return Errorf(CodeInvalidArgument, "params must be a map, got %s", WireType(c))
	}
	r := reader{b: b}
	n, err := r.mapLen("params")
	if err != nil {
		return err
	}
	for range n {
		key, err := r.key("params")
		if err != nil {
			return err
		}
		var s []byte
		switch string(key) {
		case "invocation":
			s, err = r.str("invocation")
			p.Invocation = string(s)
		case "command":
			s, err = r.str("command")
			p.Command = string(s)
		case "params":
			var raw []byte
			if raw, err = r.value("params"); err == nil && raw[0] != msgpcode.Nil {
				p.Params = msgpack.RawMessage(raw)
			}
		case "caller":
			s, err = r.str("caller")
			p.Caller = string(s)
		case "deadlineMs":
			p.DeadlineMs, err = r.int("deadlineMs")
		default:
			err = r.skip(string(key))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder for commands/handle's
// params, the daemon's cost per relayed call: the bytes the struct tags
// describe, without reflection over the struct. The caller's params go
// through enc (raw msgpack verbatim).
func (p HandleParams) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 4
	if p.DeadlineMs != 0 {
		n++
	}
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString("invocation")
	_ = enc.EncodeString(p.Invocation)
	_ = enc.EncodeString("command")
	_ = enc.EncodeString(p.Command)
	_ = enc.EncodeString("params")
	if err := enc.Encode(p.Params); err != nil {
		return err
	}
	_ = enc.EncodeString("caller")
	if err := enc.EncodeString(p.Caller); err != nil {
		return err
	}
	if p.DeadlineMs != 0 {
		_ = enc.EncodeString("deadlineMs")
		return enc.EncodeInt64(p.DeadlineMs) // as reflection writes an int64
	}
	return nil
}

// decodeParams reads kernel/ping's result, a client's cost per ping, without
// reflection.
func (p *PingResult) decodeParams(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c := b[0]; c != msgpcode.Nil && !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return Errorf(CodeInvalidArgument, "params must be a map, got %s", WireType(c))
	}
	r := reader{b: b}
	n, err := r.mapLen("params")
	if err != nil {
		return err
	}
	for range n {
		key, err := r.key("params")
		if err != nil {
			return err
		}
		if string(key) == "ts" {
			p.TS, err = r.int("ts")
		} else {
			err = r.skip(string(key))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder for kernel/ping's result:
// the daemon's cost per ping, the bytes reflection writes.
func (p PingResult) EncodeMsgpack(enc *msgpack.Encoder) error {
	_ = enc.EncodeMapLen(1)
	_ = enc.EncodeString("ts")
	return enc.EncodeInt64(p.TS)
}

// decodeParams reads the params of a method that takes none (kernel/ping's,
// among others): a map, or nil, whose keys are all skipped, as DecodeParams
// does for an empty struct, without reflection.
func (p *Empty) decodeParams(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c := b[0]; c != msgpcode.Nil && !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return Errorf(CodeInvalidArgument, "params must be a map, got %s", WireType(c))
	}
	r := reader{b: b}
	n, err := r.mapLen("params")
	if err != nil {
		return err
	}
	for range n {
		key, err := r.key("params")
		if err != nil {
			return err
		}
		if err := r.skip(string(key)); err != nil {
			return err
		}
	}
	return nil
}
