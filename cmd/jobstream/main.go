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
	// Signals go to the command: most end their context on the first one
	// (serve then drains); ask treats Ctrl-C itself (cancel, then detach).
	interrupts := make(chan os.Signal, 8)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	e := &env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, interrupts: interrupts}
	if err := runEnv(context.Background(), e, os.Args[1:]); err != nil {
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
