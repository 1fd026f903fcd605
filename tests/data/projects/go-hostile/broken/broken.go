// Package broken does not compile.
package broken

var Answer int = "forty-two"
