package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/sandbox"
)

func Example() {
	ctx := context.Background()
	engine, err := sandbox.NewEngine(sandbox.Config{}) // in-memory compilation cache
	if err != nil {
		panic(err)
	}
	defer engine.Close(ctx)

	limits := bundle.DefaultLimits
	limits.Timeout = bundle.Duration(100 * time.Millisecond)
	fn, err := engine.Load(ctx, wasmtest.Loop(), limits) // a module that never returns
	if err != nil {
		panic(err)
	}
	defer fn.Close(ctx)

	_, err = fn.Invoke(ctx, nil, nil)
	var fe *sandbox.Error
	if errors.As(err, &fe) {
		fmt.Println(fe.Kind, "-", fe.Message)
	}
	// Output: timeout - function did not finish within its 100ms timeout
}
