// Command holdfast-shim is the per-container shim of holdfast's process
// runtime, as a binary of its own: it links only the shim package, so it
// starts in about a millisecond and keeps about a megabyte per container,
// where `holdfast shim` (the same code inside the full binary) pays for
// every package the holdfast binary links. The agent uses holdfast-shim
// when it is installed next to holdfast, and `holdfast shim` otherwise.
package main

import (
	"os"

	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
)

func main() {
	os.Exit(shim.Run(os.Args[1:]))
}
