package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/sessionstore"
)

// RedisStore keeps sessions in Redis, so that many Caddy instances share
// them. Expiry is Redis's TTL.
type RedisStore struct {
	// URL is a redis:// or rediss:// (TLS) URL: user, password and
	// database come from it.
	URL string `json:"url"`
	// Prefix of every key. Default "edgesession:".
	Prefix string `json:"prefix,omitempty"`
	// Sentinel connects through Redis Sentinel to this master name.
	SentinelMaster string `json:"sentinel_master,omitempty"`
	// SentinelAddrs are the Sentinels' host:port addresses.
	SentinelAddrs []string `json:"sentinel_addrs,omitempty"`
	// Cluster connects to a Redis Cluster through these host:port
	// addresses (the URL's host is used too).
	Cluster []string `json:"cluster,omitempty"`
	// DialTimeout bounds connecting. Default 2s. Reads and writes are
	// bounded to the same, so a Redis that hangs fails requests quickly.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// CacheMaxAge is how long this instance keeps a session it read in
	// its memory at most. Default 1s. Redis's client-side caching (CLIENT
	// TRACKING) drops a copy the moment any instance changes or deletes
	// the session, so a hot session costs no round trip; should an
	// invalidation be lost, CacheMaxAge is the worst-case delay before a
	// logout or revocation made through another instance is seen here.
	// The cache is dropped whenever a tracking connection (one per master
	// in a cluster) is lost.
	CacheMaxAge caddy.Duration `json:"cache_max_age,omitempty"`
	// DisableCache reads every session from Redis: a revocation anywhere
	// is seen at once, at the cost of one round trip per request.
	DisableCache bool `json:"disable_cache,omitempty"`

	key    string
	store  sessionstore.Store
	client redis.UniversalClient
	where  string // the servers, for messages (never the password)
}

// DefaultRedisPrefix is the default key prefix.
const DefaultRedisPrefix = "edgesession:"

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision implements caddy.Provisioner.
func (rs *RedisStore) Provision(ctx caddy.Context) error {
	if rs.Prefix == "" {
		rs.Prefix = DefaultRedisPrefix
	}
	if rs.CacheMaxAge < 0 {
		return fmt.Errorf("redis: cache_max_age %v: want a positive duration (disable_cache turns the cache off)", time.Duration(rs.CacheMaxAge))
	}
	if rs.DisableCache && rs.CacheMaxAge > 0 {
		return fmt.Errorf("redis: disable_cache with cache_max_age %v: choose one", time.Duration(rs.CacheMaxAge))
	}
	opts, err := rs.options()
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(rs)
	key := "redis:" + string(cfg)
	p, err := loadStore(key, func() (pooledStore, error) {
		client := redis.NewUniversalClient(opts)
		store := sessionstore.NewRedis(client, rs.Prefix)
		if rs.DisableCache {
			return pooledStore{Store: store, close: client.Close, redis: client}, nil
		}
		// The store outlives this config (it is pooled), and so does
		// the logger it keeps.
		logger := ctx.Logger(rs)
		failed := func(addr string, err error) {
			if rs.SentinelMaster != "" {
				addr = "the master of " + rs.SentinelMaster // go-redis's failover client has no address
			}
			logger.Warn("redis cache: no tracking connection; every request reads its session from Redis until there is one",
				zap.String("redis", addr), zap.Error(err))
		}
		cached, err := sessionstore.NewRedisCache(store, time.Duration(rs.CacheMaxAge), failed)
		if err != nil {
			client.Close()
			return pooledStore{}, err
		}
		closeBoth := func() error { return errors.Join(cached.Close(), client.Close()) }
		return pooledStore{Store: cached, close: closeBoth, redis: client}, nil
	})
	if err != nil {
		return err
	}
	rs.store, rs.client, rs.key, rs.where = p.Store, p.redis, key, redisWhere(opts)
	rs.checkReachable(ctx.Logger(rs), opts.DialTimeout)
	return nil
}

// checkReachable says, at start and at each reload (and in `caddy
// validate`), if Redis does not answer: at error level, naming the store
// and its servers. Caddy starts all the same, and fails closed: what
// needs a session (a login, a page behind the session) is answered 503
// until Redis answers, with no restart. Refusing to start would be worse:
// in a fleet that boots while Redis is down (or fails over), every
// instance would stay down, its public routes and other sites with it,
// until someone restarted each one after Redis came back.
func (rs *RedisStore) checkReachable(logger *zap.Logger, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rs.client.Ping(pctx).Err(); err != nil {
		logger.Error("redis store unreachable: requests that need a session are answered 503 until it answers",
			zap.String("redis", rs.where), zap.String("prefix", rs.Prefix), zap.Error(err))
	}
}

// redisWhere names the servers of opts for a message.
func redisWhere(opts *redis.UniversalOptions) string {
	switch {
	case opts.MasterName != "":
		return "the master of " + opts.MasterName + " (sentinels " + strings.Join(opts.Addrs, ", ") + ")"
	case opts.IsClusterMode:
		return "cluster " + strings.Join(opts.Addrs, ", ")
	}
	return fmt.Sprintf("%s database %d", opts.Addrs[0], opts.DB)
}

// Where names the store's Redis servers, for messages.
func (rs *RedisStore) Where() string { return rs.where }

// options turns the config into go-redis options; connecting waits for the
// first command, so Caddy starts even while Redis is down.
func (rs *RedisStore) options() (*redis.UniversalOptions, error) {
	u, err := redis.ParseURL(caddy.NewReplacer().ReplaceKnown(rs.URL, ""))
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	timeout := 2 * time.Second
	if rs.DialTimeout > 0 {
		timeout = time.Duration(rs.DialTimeout)
	}
	opts := &redis.UniversalOptions{
		Addrs:        []string{u.Addr},
		Username:     u.Username,
		Password:     u.Password,
		DB:           u.DB,
		TLSConfig:    u.TLSConfig,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		MaxRetries:   1,
	}
	switch {
	case rs.SentinelMaster != "" && len(rs.Cluster) > 0:
		return nil, fmt.Errorf("redis: sentinel and cluster cannot both be set")
	case rs.SentinelMaster != "":
		if len(rs.SentinelAddrs) == 0 {
			return nil, fmt.Errorf("redis sentinel %q: no sentinel addresses", rs.SentinelMaster)
		}
		opts.MasterName = rs.SentinelMaster
		opts.Addrs = rs.SentinelAddrs
	case len(rs.Cluster) > 0:
		if u.DB != 0 {
			return nil, fmt.Errorf("redis cluster: a cluster has only database 0")
		}
		opts.Addrs = append([]string{u.Addr}, rs.Cluster...)
		opts.IsClusterMode = true
	}
	return opts, nil
}

// Cleanup implements caddy.CleanerUpper.
func (rs *RedisStore) Cleanup() error {
	if rs.key == "" {
		return nil
	}
	_, err := stores.Delete(rs.key)
	return err
}

// SessionStore implements StoreProvider.
func (rs *RedisStore) SessionStore() sessionstore.Store { return rs.store }

// RedisClient is the store's client, pooled with it: it stays open while
// any config that provisioned this store is loaded. Callers must not close
// it, and keep their keys under Prefix.
func (rs *RedisStore) RedisClient() redis.UniversalClient { return rs.client }

// UnmarshalCaddyfile reads
//
//	store redis <url> {
//		prefix <string>
//		sentinel <master> <addr...>
//		cluster <addr...>
//		dial_timeout <duration>
//		cache <max_age>|off
//	}
func (rs *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	if !d.NextArg() {
		return d.Err("store redis needs a redis:// or rediss:// URL")
	}
	rs.URL = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("store redis: %s given twice", sub)
		}
		seen[sub] = true
		switch sub {
		case "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			rs.Prefix = d.Val()
		case "sentinel":
			if !d.NextArg() {
				return d.Err("sentinel needs a master name and at least one address")
			}
			rs.SentinelMaster = d.Val()
			rs.SentinelAddrs = d.RemainingArgs()
			if len(rs.SentinelAddrs) == 0 {
				return d.Err("sentinel needs at least one address")
			}
			continue
		case "cluster":
			rs.Cluster = d.RemainingArgs()
			if len(rs.Cluster) == 0 {
				return d.Err("cluster needs at least one address")
			}
			continue
		case "dial_timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("dial_timeout %q: want a positive duration", d.Val())
			}
			rs.DialTimeout = caddy.Duration(dur)
		case "cache":
			if !d.NextArg() {
				break // the default max age
			}
			if d.Val() == "off" {
				rs.DisableCache = true
				break
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("cache %q: want a positive max age or off", d.Val())
			}
			rs.CacheMaxAge = caddy.Duration(dur)
		default:
			return d.Errf("store redis: unknown option %q", sub)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if rs.SentinelMaster != "" && len(rs.Cluster) > 0 {
		return d.Err("store redis: sentinel and cluster cannot both be set")
	}
	if _, err := redis.ParseURL(rs.URL); err != nil && !strings.Contains(rs.URL, "{") {
		return d.Errf("store redis: %v", err)
	}
	return nil
}
