package names

import "testing"

func TestSubtests(t *testing.T) {
	for _, name := range []string{
		"with space",
		"a+b (c)",
		"[x]|y$",
		"ünïcödé ✓",
		"dot.star*",
		"slash/inside",
		"tab\there",
		"dup",
		"dup",
		"^anchored$",
		`back\slash`,
		"{brace}?",
	} {
		t.Run(name, func(t *testing.T) {})
	}
}

func TestÜber(t *testing.T) {}

func TestParallel(t *testing.T) {
	for _, name := range []string{"one", "two", "three"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
		})
	}
}

func TestSubtests2(t *testing.T) {
	t.Run("with space", func(t *testing.T) {})
}
