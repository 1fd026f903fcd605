package ext_test

import (
	"fmt"
	"testing"

	"example.com/hostile/ext"
)

func TestExternal(t *testing.T) {
	if ext.Double(2) != 4 {
		t.Fatal("Double")
	}
}

func ExampleDouble() {
	fmt.Println(ext.Double(2))
	// Output: 4
}
