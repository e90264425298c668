//go:build !unix

package redistest

import (
	"errors"
	"os"
)

// canFreeze is false: without SIGSTOP a process cannot be frozen, so
// Pause skips the test.
const canFreeze = false

func freeze(*os.Process) error { return errors.New("no SIGSTOP on this system") }

func thaw(*os.Process) error { return nil }
