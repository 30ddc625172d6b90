package main

import (
	"context"
	"errors"
)

func cmdBench(ctx context.Context, args []string, u *ui) error {
	return errors.New("vouch bench: not built yet")
}
