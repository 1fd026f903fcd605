// The second test waits until the file named by DAGPAR_TEST_GO_ON exists (at most five
// minutes), so that a test can watch the first one end while go test still runs.
package waits

import (
	"os"
	"testing"
	"time"
)

func TestDone(t *testing.T) {}

func TestWaits(t *testing.T) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(os.Getenv("DAGPAR_TEST_GO_ON")); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nobody said go on")
}
