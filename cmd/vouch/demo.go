package main

import (
	"context"
	"errors"
)

func cmdDemo(ctx context.Context, args []string, u *ui) error {
	return errors.New("vouch demo: not built yet")
}
