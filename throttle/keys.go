package throttle

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// key names one count: a hash of the scope, the client and, for a
// per-user count, the username. Every key has the same small size,
// however long the name.
type key [16]byte

// attemptKeys are the two counts an attempt is checked against.
type attemptKeys struct {
	user, client key
}

// keysFor names the counts of an attempt of user from ip in scope: a
// lockout in one scope does not reach another.
func keysFor(scope, ip, user string) attemptKeys {
	client := ClientNet(ip)
	return attemptKeys{
		user:   hashKey('u', scope, client, user),
		client: hashKey('c', scope, client, ""),
	}
}

func hashKey(kind byte, scope, client, user string) key {
	var buf [128]byte
	b := append(buf[:0], kind)
	for _, s := range []string{scope, client, user} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	return key(sum[:16])
}

// ClientNet is what one client's attempts are counted under: its IPv4
// address (also when written as IPv4-mapped IPv6), or its IPv6 /64, since
// one host may use any address of its /64. ip may carry a port (as
// http.Request.RemoteAddr does); what is no address is returned as it is.
func ClientNet(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		ap, err := netip.ParseAddrPort(ip) // r.RemoteAddr, outside Caddy
		if err != nil {
			return ip
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
