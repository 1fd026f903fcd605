package store

import "testing"

// Test is a valid test name on its own: "Test" followed by nothing.
func Test(t *testing.T) {}

func TestPut(t *testing.T) {
	s := New()
	s.Put("a", "1")
	if v, _ := s.Get("a"); v != "1" {
		t.Fatalf("got %q", v)
	}
}

func TestPutMany(t *testing.T) {
	s := New()
	for _, k := range []string{"a", "b", "c"} {
		s.Put(k, k)
	}
}

func TestPut2(t *testing.T) {}

func TestGet(t *testing.T) {
	s := New()
	s.Put("k", "v")
	cases := []struct {
		name string
		key  string
		ok   bool
	}{
		{"present key", "k", true},
		{"missing key", "nope", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			if _, ok := s.Get(c.key); ok != c.ok {
				t.Errorf("Get(%q) ok = %v", c.key, ok)
			}
		})
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("not on this platform")
}

// Testlower is not a test: the letter after "Test" is lower case.
func Testlower(t *testing.T) { t.Fatal("must never run") }

type suite struct{}

// TestMethod has a receiver, so it is not a test.
func (suite) TestMethod(t *testing.T) { t.Fatal("must never run") }

var decoy = `
func TestInRawString(t *testing.T) {}
`

// func TestCommentedOut(t *testing.T) {}

/*
func TestInBlockComment(t *testing.T) {}
*/

var _ = decoy
var _ = suite{}
