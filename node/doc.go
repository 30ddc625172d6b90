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
//	cfg.Runtime = node.NewClientRuntime(c, ref) // c: an attested client.Client
//	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
//	cfg.OnStartedLeading = func(ctx context.Context, fencing uint64) {
//		// Lead until ctx is cancelled; pass fencing to storage.
//	}
//	n, err := node.New(*cfg)
//	err = n.Start(ctx)
//	l := n.Leader()              // who leads, the fencing token, whether we do
//	ch, cancel := n.Subscribe()  // leader changes
//	err = n.Shutdown(ctx)        // leave gracefully
//
// One goroutine owns the election core (package election); memberlist's
// callbacks and runtime answers reach it through a channel, and readers see
// a snapshot (Status, Leader). The duties it carries out, in order, are in
// package election's documentation and docs/ELECTION.md.
//
// Two schemes are supported. By default the node sends its member list to
// the built-in leader function, the original demo's policy, and orders
// certificates by the receipt's seq. With Config.ClusterConfig it submits
// signed views to the built-in election function, which tallies majorities
// and keeps terms inside the runtime, so that a minority of lying members
// can neither evict a live leader nor keep a dead one.
package node
