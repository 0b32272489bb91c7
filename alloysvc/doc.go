// Package alloysvc hosts the alloy library (package alloy) in the daemon: it
// serves alloy/verify, alloy/get and alloy/list (wire types in package api,
// format in docs/ALLOY.md) and keeps alloys as entities in the kernel's
// bbolt file.
//
// What it promises:
//
//   - Alloys are stored by their hash in the bucket "alloy/by-hash" of the
//     kernel's file, as their canonical bytes; Put and alloy/verify store
//     only alloys whose chain holds (signatures, links, hashes), and storing
//     the same alloy twice keeps the first storedAt.
//   - alloy/verify answers a verdict signed by this install's identity. A
//     verification that fails is a verdict with passed false and a reason
//     naming the stage, not an error; input that is not an alloy, a wrong
//     type, a relative artifact path is invalid_argument naming the field.
//   - A caller that goes away stops the hashing of its artifacts between
//     reads; other callers are not affected.
package alloysvc
