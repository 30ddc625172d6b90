//go:build !unix

package main

import "os"

// notifyReload: no SIGHUP here; restart the node to reload.
func notifyReload(ch chan os.Signal) bool { return false }
