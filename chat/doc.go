// Package chat is the daemon's chat service: it declares the chat:posted
// event class and serves chat/send and chat/history (wire types in package
// api, contract in docs/CHAT.md). It is hosted in the kernel (k.Host) and
// does not speak ipc.
//
// What it promises:
//
//   - chat:posted is declared at start as broadcast, channel byRoomId,
//     schemaVersion v1, unknown schemas fail: the same contract a client
//     declares by hand (the README tour does), so such a declaration is a
//     no-op, not a conflict. A message is an ordinary event of the airc log:
//     signed, replicated, replayed, with the posting client as its sender.
//   - chat/send checks its params before anything is written: a room that
//     is not a usable channel name, blank or oversized text, or bad mentions
//     are invalid_argument naming the field; nothing reaches the log. Its
//     answer is the emit's (id, seq, lamport), given once the event is on disk.
//   - chat/history pages a room back from its newest message through the
//     log's replay, with events/replay's cursor rules: each page is in
//     transcript order, next is nil once the room's start is reached. Events
//     of other classes on the room's channel are left out, so a page may hold
//     fewer messages than its limit; a chat:posted event whose payload is not
//     a ChatPosted (emitted by hand) is shown with what can be read of it.
//     Cursor is the log head read before the page: a subscription from it
//     misses nothing that came after the page.
package chat
