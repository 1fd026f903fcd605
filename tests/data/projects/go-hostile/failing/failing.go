// Package failing has failing tests next to passing ones.
package failing
