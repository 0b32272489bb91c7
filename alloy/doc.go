// Package alloy is the forge alloy: a signed, hash-chained record of custody
// for any computation (a model forge, an adapter training, a dataset, an
// inference run, …), with an optional proof contract that a verifier re-runs
// and a signed verdict. The format, the canonical bytes and the verdict are
// specified in docs/ALLOY.md; this package is standalone (standard library
// only) so any program can make and check alloys without the daemon.
//
// What it promises:
//
//   - One canonical encoding: every hashed or signed byte string is RFC 8785
//     JSON (package alloy/jcs) in integers-only mode, so no float ever enters
//     hashed data; a value that cannot be encoded that way is an error.
//   - Verify before parse: Open checks every stage's Ed25519 signature over
//     the domain-separated, length-prefixed bytes of that stage (PAE, with
//     the type "continuum/alloy-stage/v1") against the key in its executor
//     peer id before it decodes anything into typed fields.
//   - Every failure of a chain (a tampered field, a forged or reordered stage,
//     a broken link, a missing or different artifact, a subset of a
//     multi-file output) is a *StageError naming the stage by index and name;
//     input that is not an alloy at all is a *FormatError. Neither panics.
//   - Verify hashes the artifacts it is handed itself and never trusts a
//     claimed digest without the bytes; a multi-file output must be handed
//     whole.
//   - A Verdict records what was checked (policy hash, each check with its
//     N, median, band and raw samples, passed, reason) and is signed by the
//     verifier, so it can be passed on and checked like an alloy.
package alloy
