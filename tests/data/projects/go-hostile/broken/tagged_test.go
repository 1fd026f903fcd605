//go:build ignore

package broken

import "testing"

// Never built: the ignore tag is never set.
func TestIgnoredByTag(t *testing.T) {}
