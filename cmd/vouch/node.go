package main

import (
	"context"
	"errors"
)

func cmdNode(ctx context.Context, args []string, u *ui) error {
	return errors.New("vouch node: not built yet")
}
