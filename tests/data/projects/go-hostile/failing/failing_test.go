package failing

import "testing"

func TestFails(t *testing.T) {
	t.Log("some context first")
	t.Errorf("want %d, got %d", 1, 2)
}

func TestPasses(t *testing.T) {}

func TestFailsInSubtest(t *testing.T) {
	t.Run("good", func(t *testing.T) {})
	t.Run("bad one", func(t *testing.T) { t.Fatal("subtest broke") })
}
