// Package util has no tests at all.
package util
