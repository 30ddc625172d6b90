// Package nodecore holds a vouch node's decisions as a pure state machine,
// in the manner of etcd raft's Step and Ready: when to ask the runtime for
// a certificate (staggered calls, backoff, HTTP 429's Retry-After, the
// leader's refresh, signed views' submissions), when a lease starts, is
// renewed or lapses, what the leader watch concludes, and how departures,
// goodbyes and dead reports are confirmed. It does no I/O: no sockets, no
// clock (every Input carries now), no goroutines, and its only randomness
// is the seeded source in its Config.
//
// The driver (package node) owns one Machine on one goroutine. It turns
// memberlist callbacks, ping outcomes and runtime answers into Inputs,
// calls Step, and carries out the Ready's effects in order. The duties,
// in order:
//
//  1. Feed the membership first: SetMembers with memberlist's current
//     members whenever they changed, before the Step that follows.
//  2. Verify nothing yourself: certificates go to Step as they arrived;
//     the election cores inside verify them against the attested key.
//  3. Persist before you act: a Persist effect comes before the Relay and
//     StartLeading effects of the same certificate; the seq (or term) and
//     the certificate itself (the floor certificate, SetFloorCert after a
//     restart) must be on disk before the certificate is relayed or acted
//     on.
//  4. Carry out the effects in order: Relay the accepted certificate,
//     make the Call or Submit (one in flight: its answer comes back as a
//     CallResult), Present the floor certificate to the runtime (one in
//     flight: its answer comes back as Presented), start the pings (Watch, Unwatch, Ping, Join), and
//     start or stop leading with the effect's fencing token and lease end.
//  5. Renew checks the leadership context: when the context had already
//     ended by the driver's clock, Step LeaseEnded at once.
//  6. Wake the machine at Ready.Wake (one timer) with a Tick, even when
//     no input arrives: backoff, stagger, lease ends and watch deadlines
//     are decided then.
package nodecore
