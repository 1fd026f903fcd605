//go:build !windows && (linux || darwin || freebsd || !plan9)

package broken

import "testing"

func TestNotWindows(t *testing.T) {}
