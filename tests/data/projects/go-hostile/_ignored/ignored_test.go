package ignored

import "testing"

func TestIgnored(t *testing.T) { t.Fatal("_ directories are not packages of ./...") }
