//go:build unix

package redistest

import (
	"os"
	"syscall"
)

// canFreeze says whether freeze works here.
const canFreeze = true

// freeze stops p where it is (SIGSTOP); thaw lets it go on (SIGCONT).
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

func thaw(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
