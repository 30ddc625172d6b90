//go:build !linux

package main

import "errors"

// releaseStartupPages is Linux only.
func releaseStartupPages() (int64, error) {
	return 0, errors.New("releasing the executable's pages is implemented on Linux only")
}
