package hostile

import (
	"fmt"
	"testing"
)

func TestRoot(t *testing.T) {
	if Reverse("ab") != "ba" {
		t.Fatal("Reverse is broken")
	}
}

// An example with an output comment runs as a test.
func ExampleReverse() {
	fmt.Println(Reverse("olleh"))
	// Output: hello
}

// An example without an output comment is compiled but never run.
func ExampleReverse_noOutput() {
	fmt.Println(Reverse("x"))
}

// A fuzz target runs its seed corpus as subtests under plain `go test`.
func FuzzReverse(f *testing.F) {
	f.Add("abc")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if Reverse(Reverse(s)) != s {
			t.Errorf("double reverse of %q", s)
		}
	})
}

// BenchmarkReverse is listed by `go test -list` but never run without -bench.
func BenchmarkReverse(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Reverse("benchmark")
	}
}
