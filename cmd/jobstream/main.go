// Command jobstream is a durable job store for streaming LLM output on
// PostgreSQL. Run `jobstream --help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "jobstream:", err)
			os.Exit(2)
		}
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "jobstream:", err)
		}
		os.Exit(1)
	}
}
