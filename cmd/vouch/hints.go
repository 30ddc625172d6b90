package main

import (
	"errors"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/node"
)

// The packages' errors name Config fields and concepts, never this
// command's flags; libraryHint maps the ones a user fixes with a flag to a
// hint that names it. cmdline.UI.Fail prints it (doMain sets it as the UI's Hint).
func libraryHint(err error) string {
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return "is `vouch enclave` running there? give the runtime's URL with --enclave URL or $VOUCH_ENCLAVE"
	case errors.Is(err, node.ErrNoRuntime):
		return "give --ref FILE or --enclave URL"
	case errors.Is(err, node.ErrNoFunction):
		return "give the election function with -f ID -fh CHECKSUM, or --ref FILE"
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeTooLarge && ae.Kind == "" {
		return "the runtime refuses bundles over its own limit: start it with a larger --max-bundle-size, or deploy a smaller bundle"
	}
	return ""
}

// runTokenHint replaces the runtime's hint on a refused function token
// with the commands that mint and pass one.
func runTokenHint(err error, fr client.FunctionRef) error {
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Code == api.CodeUnauthorized || ae.Code == api.CodeForbidden) {
		ae.Hint = "the runtime's owner mints one with `vouch token " + fr.ID + " --function-checksum " + fr.Checksum + "`; pass it with --token TOKEN, $VOUCH_TOKEN or --ref FILE"
	}
	return err
}
