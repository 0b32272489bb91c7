package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// rawRequest and rawResponse are MessagePack-RPC messages as arrays.
type rawRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Type     int
	MsgID    uint32
	Method   string
	Params   []map[string]any
}

type rawResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Type     int
	MsgID    uint32
	Error    any
	Result   map[string]any
}

// RawEcho is the floor: a minimal MessagePack-RPC server that decodes each
// request and writes a response, one at a time per connection, and n
// clients each on their own connection, over network ("unix" or "tcp" on
// 127.0.0.1). No framing limits, no dispatch, no kernel.
func RawEcho(d time.Duration, n int, network string) (Sample, error) {
	var addr string
	var dir string
	switch network {
	case "unix":
		var err error
		if dir, err = os.MkdirTemp("", "busbench-raw-"); err != nil {
			return Sample{}, err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "echo.sock")
	case "tcp":
		addr = "127.0.0.1:0"
	default:
		return Sample{}, fmt.Errorf("network %q", network)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return Sample{}, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveRawEcho(c)
			}()
		}
	}()
	type rawClient struct {
		c   net.Conn
		buf bytes.Buffer
		enc *msgpack.Encoder
		dec *msgpack.Decoder
		id  uint32
	}
	cls := make([]*rawClient, n)
	for i := range cls {
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			return Sample{}, err
		}
		defer c.Close()
		rc := &rawClient{c: c, dec: msgpack.NewDecoder(bufio.NewReader(c))}
		rc.enc = msgpack.NewEncoder(&rc.buf)
		cls[i] = rc
	}
	params := []map[string]any{{}}
	return closedLoop(d, n, func(w int) error {
		rc := cls[w]
		rc.id++
		rc.buf.Reset()
		if err := rc.enc.Encode(&rawRequest{Type: 0, MsgID: rc.id, Method: "kernel/ping", Params: params}); err != nil {
			return err
		}
		if _, err := rc.c.Write(rc.buf.Bytes()); err != nil { // one write per request
			return err
		}
		var resp rawResponse
		if err := rc.dec.Decode(&resp); err != nil {
			return err
		}
		if resp.Type != 1 || resp.MsgID != rc.id {
			return fmt.Errorf("raw echo: bad response %+v", resp)
		}
		return nil
	})
}

func serveRawEcho(c net.Conn) {
	dec := msgpack.NewDecoder(bufio.NewReader(c))
	bw := bufio.NewWriter(c)
	enc := msgpack.NewEncoder(bw)
	result := map[string]any{"ts": int64(0)}
	for {
		var req rawRequest
		if err := dec.Decode(&req); err != nil {
			return // EOF or a closed connection: the client went
		}
		result["ts"] = time.Now().UnixMilli()
		if err := enc.Encode(&rawResponse{Type: 1, MsgID: req.MsgID, Result: result}); err != nil {
			return
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}
