package endpoints

import "testing"

func TestRetryIn(t *testing.T) {
	for secs, want := range map[int]string{0: "in 1 minute", 1: "in 1 minute", 60: "in 1 minute", 61: "in 2 minutes", 900: "in 15 minutes", 3599: "in 60 minutes"} {
		if got := retryIn(secs); got != want {
			t.Errorf("retryIn(%d) = %q, want %q", secs, got, want)
		}
	}
}
