// Package node is a vouch cluster member: it gossips membership with its
// peers over UDP (hashicorp/memberlist: SWIM probes with Lifeguard, TCP
// push/pull for anti-entropy), asks the trusted runtime's election function
// who leads, spreads the signed leader certificate, and accepts only
// certificates it can verify.
//
// A program embeds a node like this:
//
//	cfg := node.DefaultLocalConfig() // or DefaultLANConfig, DefaultWANConfig
//	cfg.Name = "5000"
//	cfg.BindPort = 5000
//	cfg.Peers = []string{"127.0.0.1:5001"}
//	cfg.GossipKey = key // the cluster's, as in its references (api.Ref.GossipKeys)
//	cfg.Runtime = node.NewClientRuntime(c, ref) // c: client.NewReplicas(apiRef.URLs(), opts)
//	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
//	cfg.OnStartedLeading = func(ctx context.Context, fencing uint64) {
//		// Lead while ctx.Err() == nil; give ctx to every call and
//		// fencing to storage.
//	}
//	cfg.OnNewLeader = func(id string) { /* every new leader, in order */ }
//	n, err := node.New(*cfg)
//	err = n.Start(ctx)
//	l := n.Leader()                  // who leads, the fencing token, whether we do
//	ch := n.SubscribeContext(ctx)    // leader changes, until ctx ends
//	err = n.Resign(ctx)              // hand the leadership over (stops acting first)
//	err = n.Shutdown(ctx)            // stop acting, then leave gracefully
//
// Or, in the shape of client-go's leaderelection, n.Run(ctx) starts the
// node, blocks until ctx ends and leaves; with cfg.ReleaseOnCancel a
// leader resigns first (docs/ELECTION.md, section 7).
//
// The leadership context, the ctx OnStartedLeading receives, is what a
// leader may rely on:
//
//   - With signed views its Deadline is the current lease end, and it
//     moves with every renewal. Err compares the clock with that deadline
//     on every call: it returns context.DeadlineExceeded as soon as the
//     lease end has passed, even if no timer or goroutine of the node has
//     run since (a process that resumes from SIGSTOP or a long GC pause
//     sees it at its first check). Done is closed at the lease end and
//     also checks the clock before it returns.
//   - It ends with context.Canceled when the leadership is lost (a newer
//     certificate names another member, a new term starts) or the node
//     stops. The member-list scheme has no lease: no deadline, only loss.
//   - Once it has ended it never comes back. A renewal handled after the
//     lease end starts a new leadership: OnStoppedLeading, then
//     OnStartedLeading with a new context and the same token.
//   - Contexts derived from it end with it. context.WithCancel children
//     report its moving Deadline, but their Err and Done follow it a
//     moment later (a goroutine of package context); WithTimeout and
//     WithDeadline children fix the lease end as it was when they were
//     made. Derive one per operation, and check the leadership context
//     itself just before an irreversible step.
//   - No check survives a pause between the check and the act. Storage
//     must reject writes whose fencing token is below the highest it has
//     seen; the context only keeps a paused leader from starting new work.
//
// Node.Leader and GET /leader answer from the same context.
//
// The decisions (when to call the runtime, leases, the leader watch's
// verdicts, departures) are a pure state machine in node/internal/nodecore,
// which wraps the election cores (package election). One goroutine, the
// loop, owns it: memberlist's callbacks, pings and runtime answers reach
// it through a channel as inputs, it carries out the effects each step
// returns (in the order that package's documentation lists), and readers
// see a snapshot (Status, Leader).
//
// Two schemes are supported. By default the node sends its member list to
// the built-in leader function, the original demo's policy, and orders
// certificates by the receipt's seq. With Config.ClusterConfig it submits
// signed views to the built-in election function, which tallies majorities
// and keeps terms inside the runtime, so that a minority of lying members
// can neither evict a live leader nor keep a dead one.
package node
