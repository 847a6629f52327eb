package identity

import (
	"slices"
	"testing"
)

func TestGroups(t *testing.T) {
	tests := []struct {
		in         []string
		wantNames  []string
		wantHeader string
	}{
		{nil, nil, ""},
		{[]string{}, nil, ""},
		{[]string{"staff", "admin", "ops", "admin"}, []string{"admin", "ops", "staff"}, "admin, ops, staff"},
		{[]string{"Domain Admins", "a,b", " pad", "", "x\ny", "\xff", "ü"}, []string{"Domain Admins", "ü"}, "Domain Admins, ü"},
		{[]string{"a,b"}, nil, ""},
	}
	for _, tt := range tests {
		g := NewGroups(tt.in)
		if tt.wantNames == nil {
			if g != nil {
				t.Errorf("NewGroups(%q) = %+v, want nil", tt.in, g)
			}
			continue
		}
		if !slices.Equal(g.names, tt.wantNames) || g.joined != tt.wantHeader || g.value != any(tt.wantHeader) {
			t.Errorf("NewGroups(%q) = %q %q, want %q %q", tt.in, g.names, g.joined, tt.wantNames, tt.wantHeader)
		}
		for _, n := range tt.wantNames {
			if !g.Has(n) {
				t.Errorf("NewGroups(%q).has(%q) = false", tt.in, n)
			}
		}
		if g.Has("nope") {
			t.Errorf("NewGroups(%q).has(nope)", tt.in)
		}
	}
	var none *Groups
	if none.Has("admin") {
		t.Error("a nil set has a group")
	}
}

func TestGroupNamesRefuseInvisibles(t *testing.T) {
	for _, g := range []string{"o\u202Eps", "ops\u200B", "\uFEFFops", "o\u00ADps", "ops\uFDEF"} {
		if ValidGroup(g) == nil {
			t.Errorf("ValidGroup(%+q) accepts it", g)
		}
		if ForwardableGroup(g) {
			t.Errorf("ForwardableGroup(%+q)", g)
		}
	}
	if ValidGroup("corp:ops") != nil || !ForwardableGroup("corp:ops") {
		t.Error("a qualified group is refused")
	}
}
