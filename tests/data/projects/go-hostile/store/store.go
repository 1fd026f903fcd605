// Package store is a tiny map wrapper whose tests share name prefixes.
package store

// Store maps keys to values.
type Store struct{ m map[string]string }

// New returns an empty store.
func New() *Store { return &Store{m: map[string]string{}} }

// Put sets key to value.
func (s *Store) Put(key, value string) { s.m[key] = value }

// Get returns the value of key.
func (s *Store) Get(key string) (string, bool) {
	v, ok := s.m[key]
	return v, ok
}
