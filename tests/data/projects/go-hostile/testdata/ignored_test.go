package testdata

import "testing"

func TestInTestdata(t *testing.T) { t.Fatal("testdata is not a package of ./...") }
