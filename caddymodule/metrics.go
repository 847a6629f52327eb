package caddymodule

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// metrics are the handler's Prometheus collectors. They are created once
// per process and registered on each config's registry, so counts go on
// across reloads.
type metrics struct {
	logins      *prometheus.CounterVec
	logouts     prometheus.Counter
	requests    *prometheus.CounterVec
	storeErrors prometheus.Counter
	storeOps    *prometheus.HistogramVec
	mfa         *prometheus.CounterVec

	// byState holds the requests counter of each state, resolved once:
	// WithLabelValues hashes its labels on every call.
	byState map[string]prometheus.Counter
}

// request counts one request whose session was in state.
func (m *metrics) request(state string) { m.byState[state].Inc() }

var processMetrics = &metrics{
	logins: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "logins_total",
		Help: "Login attempts by result: success, failure, throttled, error. Each request with HTTP Basic credentials is one.",
	}, []string{"result"}),
	logouts: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "logouts_total",
		Help: "Sessions ended by a logout.",
	}),
	requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "requests_total",
		Help: "Requests by the state of their session cookie: valid, none, invalid, expired, foreign (a session another handler issued), error.",
	}, []string{"state"}),
	storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_errors_total",
		Help: "Session store operations that failed.",
	}),
	storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_operation_seconds",
		Help:    "Latency of session store operations.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op"}),
	mfa: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "mfa_total",
		Help: "Second-factor events by event (enrolled, removed, reset, verified, failed, replayed, throttled) and method (totp, passkey, recovery, all).",
	}, []string{"event", "method"}),
}

// mfaEvents and mfaMethods are the label values of the mfa counter; any
// other is counted as "other", so that no caller can grow the series
// without bound.
var (
	mfaEvents  = []string{"enrolled", "removed", "reset", "verified", "failed", "replayed", "throttled"}
	mfaMethods = []string{"totp", "passkey", "recovery", "all"}
)

// mfaEvent counts one second-factor event (endpoints.MFA.Count).
func (m *metrics) mfaEvent(event, method string) {
	if !slices.Contains(mfaEvents, event) {
		event = "other"
	}
	if !slices.Contains(mfaMethods, method) {
		method = "other"
	}
	m.mfa.WithLabelValues(event, method).Inc()
}

var metricsOnce sync.Once

// registerMetrics registers the collectors on reg (each config load has a
// new registry) and returns them.
func registerMetrics(reg prometheus.Registerer, logger *zap.Logger) *metrics {
	m := processMetrics
	metricsOnce.Do(func() {
		m.byState = map[string]prometheus.Counter{}
		for _, state := range session.States {
			m.byState[state] = m.requests.WithLabelValues(state)
		}
	})
	if reg == nil {
		return m
	}
	for _, c := range []prometheus.Collector{m.logins, m.logouts, m.requests, m.storeErrors, m.storeOps, m.mfa} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("cannot register session metrics", zap.Error(err))
			}
		}
	}
	return m
}

// instrumentedStore times every operation of a store.
type instrumentedStore struct {
	sessionstore.Store
	find, create, update, del prometheus.Observer
}

func instrument(s sessionstore.Store, m *metrics) sessionstore.Store {
	return &instrumentedStore{
		Store:  s,
		find:   m.storeOps.WithLabelValues("find"),
		create: m.storeOps.WithLabelValues("create"),
		update: m.storeOps.WithLabelValues("update"),
		del:    m.storeOps.WithLabelValues("delete"),
	}
}

func since(o prometheus.Observer, start time.Time) { o.Observe(time.Since(start).Seconds()) }

// Unwrap returns the store below.
func (s *instrumentedStore) Unwrap() sessionstore.Store { return s.Store }

func (s *instrumentedStore) Find(ctx context.Context, key sessionstore.Key) (sessionstore.Record, bool, error) {
	defer since(s.find, time.Now())
	return s.Store.Find(ctx, key)
}

func (s *instrumentedStore) Create(ctx context.Context, key sessionstore.Key, rec sessionstore.Record) error {
	defer since(s.create, time.Now())
	return s.Store.Create(ctx, key, rec)
}

func (s *instrumentedStore) Update(ctx context.Context, key sessionstore.Key, ch sessionstore.Change) (sessionstore.Record, bool, error) {
	defer since(s.update, time.Now())
	return s.Store.Update(ctx, key, ch)
}

func (s *instrumentedStore) Delete(ctx context.Context, key sessionstore.Key) error {
	defer since(s.del, time.Now())
	return s.Store.Delete(ctx, key)
}
