// Command flowctl is cdpd's flowctl: `flowctl server` runs the flowctl-compatible control
// plane; `status`, `health`, `list`, `metrics` and `alert` operate it (see control/cli).
// SIGINT and SIGTERM stop the server gracefully (exit 0) and end `status --watch`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/withobsrvr/cdpd/control/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Getenv:     os.Getenv,
		IsTerminal: cli.IsTerminal(os.Stdout),
	}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
