//go:build !linux

package sandbox

// threadCPU is not measured outside Linux.
func threadCPU() int64 { return 0 }
