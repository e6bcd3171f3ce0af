//go:build !unix

package listener

// fileLimit is unknown outside Unix: DefaultMaxConns caps nothing there.
func fileLimit() int { return 0 }
