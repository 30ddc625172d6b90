// Package version holds vouch's version string.
package version

// Version is the vouch release this binary was built from.
const Version = "0.1.0"
