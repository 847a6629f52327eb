package throttle

import (
	"testing"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// The tests share Redis database 9 (or EDGESESSION_REDIS_URL); what they
// wrote there is removed after the run.
func TestMain(m *testing.M) { storetest.Main(m) }
