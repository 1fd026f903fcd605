package broken

import "testing"

func TestBrokenA(t *testing.T) {}

func TestBrokenB(t *testing.T) {}
