package broken

import "testing"

// Only built on Windows: the file name says so.
func TestWindowsOnly(t *testing.T) {}
