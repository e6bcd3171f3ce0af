package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithHost makes the kernel kill the plugin if the server process dies
// (kill -9, crash), so no plugin outlives its host. (Strictly, it fires when
// the OS thread that started the plugin exits; the Go runtime keeps its
// threads, and a plugin killed early would just be restarted.)
func dieWithHost(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
