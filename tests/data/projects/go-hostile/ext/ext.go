// Package ext is tested from an external test package too.
package ext

// Double doubles.
func Double(x int) int { return 2 * x }
