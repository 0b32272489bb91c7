// Package api holds the wire types of continuum: the params and result of every
// method, the event envelope, event-class configuration, the error catalogue, and
// the method table that kernel/info publishes and gen/ turns into client shims.
//
// It is a leaf: it imports nothing of the project, so the kernel, the transports,
// the generator and the CLI all agree on one definition of the protocol. Field
// names on the wire are the msgpack tags (camelCase); Go is the source of truth.
package api
