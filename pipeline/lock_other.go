//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package pipeline

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK on platforms without flock; running two
// brokers on one data directory there is the operator's responsibility.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
}
