// Package redisclients holds benchmarks only: reading one session from
// Redis with go-redis v9 (the project's sessionstore.Redis), with
// sessionstore.RedisCache, and with github.com/redis/rueidis with and
// without its client-side cache. It is a module of its own so that
// rueidis never becomes a dependency of edgesession. See README.md.
package redisclients
