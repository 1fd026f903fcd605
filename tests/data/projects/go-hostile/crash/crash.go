// Package crash has a test that panics and kills its test binary.
package crash
