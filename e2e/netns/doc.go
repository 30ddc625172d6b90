// Package netns is a multi-host test bed: it runs the runtime and gossip
// nodes as separate vouch processes, each in its own Linux network
// namespace with its own address, joined by bridges in a namespace of
// their own, and partitions them by setting links down. The tests build
// only with the netns tag and need root and the ip command; see
// docs/DEPLOY.md, "Test bed".
package netns
