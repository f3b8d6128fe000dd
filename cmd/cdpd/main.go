// Command cdpd runs many Stellar CDP pipelines in one process; see package daemon.
package main

import (
	"os"

	"github.com/withobsrvr/cdpd/daemon"
)

func main() { os.Exit(daemon.Main(os.Args[1:], os.Stdout, os.Stderr)) }
