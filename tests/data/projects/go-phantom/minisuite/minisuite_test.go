package minisuite

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// mockT records failures instead of failing the test that runs the inner suite.
type mockT struct{ failed bool }

func (m *mockT) Fail()        { m.failed = true }
func (m *mockT) Failed() bool { return m.failed }

func TestBefore(t *testing.T) {}

// TestReportsFailures passes because the inner suite fails, as it should.
func TestReportsFailures(t *testing.T) {
	inner := &mockT{}
	Run(inner, os.Stdout, "TestInner", []Case{
		{Name: "ok", Run: func() error { return nil }},
		{Name: "broken", Run: func() error { return errors.New("inner_test.go:3: broken on purpose") }},
	})
	if !inner.Failed() {
		t.Fatal("the inner suite should have failed")
	}
}

// TestPrintsInSubtests prints failure lines from real subtests, at every depth, and names a
// test that already passed.
func TestPrintsInSubtests(t *testing.T) {
	t.Run("level", func(t *testing.T) {
		fmt.Println("--- FAIL: TestPrintsInSubtests/level/deeper (0.00s)")
		t.Run("deep", func(t *testing.T) {
			Run(&mockT{}, os.Stdout, "TestPrintsInSubtests/level/deep/inner", []Case{
				{Name: "x", Run: func() error { return errors.New("x failed") }},
			})
		})
	})
	fmt.Println("--- FAIL: TestBefore (0.00s)")
}

func TestSkipped(t *testing.T) {
	fmt.Println("--- FAIL: TestSkipped/never (0.00s)")
	t.Skip("not here")
}

func TestAfter(t *testing.T) {}
