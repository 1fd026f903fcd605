// Package names holds tests whose names are hard to select.
package names
