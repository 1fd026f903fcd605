// Package minisuite is a small test-suite framework that reports like the testing package.
//
// Its own tests run inner suites on a mock T and print what the inner suite reports:
// "=== RUN" and "--- FAIL:" lines that go test -json reads as events of tests that do not exist.
package minisuite

import (
	"fmt"
	"io"
	"time"
)

// T is what a suite needs of a test: *testing.T, or a mock of it.
type T interface {
	Fail()
	Failed() bool
}

// Case is one case of a suite: it returns an error to fail.
type Case struct {
	Name string
	Run  func() error
}

// Run runs the cases as suite name on t, reporting each to out the way go test -v does.
func Run(t T, out io.Writer, name string, cases []Case) {
	fmt.Fprintf(out, "=== RUN   %s\n", name)
	start := time.Now()
	for _, c := range cases {
		full := name + "/" + c.Name
		fmt.Fprintf(out, "=== RUN   %s\n", full)
		if err := c.Run(); err != nil {
			t.Fail()
			fmt.Fprintf(out, "    %s\n    --- FAIL: %s (0.00s)\n", err, full)
		} else {
			fmt.Fprintf(out, "    --- PASS: %s (0.00s)\n", full)
		}
	}
	verdict := "PASS"
	if t.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "--- %s: %s (%.2fs)\n", verdict, name, time.Since(start).Seconds())
}
