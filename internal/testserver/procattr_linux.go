package testserver

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server die with the test binary, so a test that
// panics or times out leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
