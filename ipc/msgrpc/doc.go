// Package msgrpc speaks MessagePack-RPC (the msgpack-rpc spec, as Neovim uses
// it) over any transport that carries whole messages:
//
//	request       [0, msgid, method, params]
//	response      [1, msgid, error, result]
//	notification  [2, method, params]
//
// params is an array holding exactly one map (an empty array is an empty
// map); error is nil or {code, message, data?} (api.Error); msgids are uint32
// and each side numbers its own requests.
//
// What it promises:
//
//   - Framing never trusts a length header. Reader walks each msgpack object,
//     and before it reads any declared length it checks that the message so
//     far, plus that length, plus one byte per announced element, stays under
//     the size limit (16 MiB by default). A bin32 that claims 4 GiB fails at
//     once with message_too_large and allocates nothing; nesting is bounded
//     by MaxDepth; 0xc1 is refused. A message whole in the read buffer is
//     handed out from there without a copy; a larger one is assembled in a
//     buffer from a pool, and an idle connection holds none.
//   - Bad input never panics and only ever closes the connection that sent
//     it: the peer gets an error response when its request's msgid could be
//     read, a kernel/protocol-error notification otherwise, and then the
//     connection closes.
//   - A Conn's reader never waits on a slow handler: each request runs in its
//     own goroutine (at most MaxInFlight at once, beyond which the reader
//     waits, dropping nothing), except the methods an InlineHandler declares
//     quick and non-blocking, which run on the reader itself, and the
//     requests an AsyncHandler takes on the reader and answers later (no
//     goroutine waits meanwhile; they count against MaxInFlight, are
//     cancelled by CancelMethod and the close, and Shutdown waits for them);
//     responses are matched to pending calls (or handed to CallAsync's
//     callback on the reader), and notifications reach the handler in
//     arrival order. Params handed to a handler are its own copy, except a
//     notification's that a LendingHandler borrows for the call only.
//   - Writes are safe for concurrent use and combined: a sender writes its
//     message itself when nobody else is writing, together with whatever
//     others queued meanwhile, one syscall per batch. The socket is only
//     tried without waiting; what it will not take goes to a writer
//     goroutine, so a peer that does not read holds up no sender beyond a
//     bounded queue, and no other connection at all.
//   - Close fails every pending call with unavailable and cancels running
//     handlers; Shutdown lets running handlers finish first.
//
// The Transport interface is the seam for other carriers: StreamTransport
// frames a byte stream (the Unix socket); a WebSocket carrier delivers one
// message per binary frame and reuses everything above framing. Every
// message is checked whatever carried it: a StreamTransport's Reader checks
// structure and limits while framing (so Conn only parses its outer shape),
// and any other carrier's messages go through ParseMessage in full.
package msgrpc
