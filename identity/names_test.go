package identity

import "testing"

func TestUserNames(t *testing.T) {
	for _, tt := range []struct {
		name       string
		local, ref bool
	}{
		{"alice", true, true},
		{"alice@example.com", true, true},
		{"Émile Zola", true, true},
		{"...", true, true},
		{".alice", true, true},
		{"corp:alice", false, true},
		{"corp:alice@example.com", false, true},
		{".", false, false},
		{"..", false, false},
		{"corp:..", false, false},
		{"corp:.", false, false},
		{"a/b", false, false},
		{"a\\b", false, false},
		{"%2E%2E", false, false},
		{"a%2Fb", false, false},
		{"corp:a/b", false, false},
		{"a\x00b", false, false},
		{"a\nb", false, false},
		{"", false, false},
		{":alice", false, false},
		{"corp:", false, false},
		{"co rp:alice", false, false},
		{"corp:a:b", false, false},
		// Format characters and noncharacters change how a name reads
		// or are no character at all.
		{"\u202Eecila", false, false},
		{"ali\u200Bce", false, false},
		{"alice\u2066", false, false},
		{"\uFEFFalice", false, false},
		{"ali\u00ADce", false, false},
		{"corp:ali\u200Dce", false, false},
		{"alice\uFDD0", false, false},
		{"alice\uFFFF", false, false},
		{"alice\U0001FFFE", false, false},
		{"alice\uFFFD", true, true},
		// A provider named by dots only is a path's dot segment.
		{".:alice", false, false},
		{"..:alice", false, false},
		{"...:alice", false, false},
		{"c.orp:alice", false, true},
	} {
		if got := ValidUsername(tt.name) == nil; got != tt.local {
			t.Errorf("ValidUsername(%q) ok = %v, want %v", tt.name, got, tt.local)
		}
		if got := ValidUserRef(tt.name) == nil; got != tt.ref {
			t.Errorf("ValidUserRef(%q) ok = %v, want %v", tt.name, got, tt.ref)
		}
	}
}

// TestGroupNamesRefuseInvisibles: no group, from any source, holds a
// format character or a noncharacter.
