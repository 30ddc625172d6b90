//go:build !linux

package chaos

import "errors"

func diagInode(local, remote int) (uint32, error) { return 0, errors.New("sock_diag is Linux only") }
