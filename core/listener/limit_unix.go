//go:build unix

package listener

import "syscall"

// fileLimit is the process's open-file limit (0: unknown or unlimited). Go
// raises the soft limit to the hard one at start, so this is the hard limit.
func fileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 || r.Cur > 1<<30 /* unlimited */ {
		return 0
	}
	return int(r.Cur)
}
