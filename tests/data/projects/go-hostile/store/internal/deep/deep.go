// Package deep is a nested package.
package deep
