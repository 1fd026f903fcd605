package deep

import "testing"

func TestDeep(t *testing.T) {}

func TestDeeper(t *testing.T) {
	t.Run("level one", func(t *testing.T) {
		t.Run("level two", func(t *testing.T) {})
	})
}
