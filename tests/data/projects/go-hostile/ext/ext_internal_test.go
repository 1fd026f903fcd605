package ext

import "testing"

func TestInternal(t *testing.T) {}

func TestPut(t *testing.T) {}

func TestGet(t *testing.T) {}
