// The second of four tests ends the test binary: go test never runs the third and fourth.
package exits

import (
	"os"
	"testing"
)

func TestFirst(t *testing.T) {}

func TestExits(t *testing.T) {
	t.Log("leaving the test binary")
	os.Exit(3)
}

func TestThird(t *testing.T) {}

func TestFourth(t *testing.T) {}
