package mfa

import (
	"testing"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// TestMain removes the keys the tests wrote to the shared Redis (vault
// entries do not expire by themselves).
func TestMain(m *testing.M) { storetest.Main(m) }
