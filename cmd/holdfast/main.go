// Command holdfast is a self-hosted, ECS-compatible service scheduler with
// task scale-in protection. This file only wires flags to the packages.
package main

import (
	"fmt"
	"os"

	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
)

func main() {
	// The runtime re-executes this binary as the per-container shim; do
	// that before anything else so a container start stays cheap.
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(shim.Run(os.Args[2:]))
	}
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "holdfast:", err)
		os.Exit(1)
	}
}
