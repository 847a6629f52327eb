package sessionstore

import (
	"encoding/binary"
	"errors"
	"sort"
	"time"
	"unicode/utf8"
)

// recordVersion is the first byte of every encoded record, so the format
// can change without misreading old records.
const recordVersion = 1

// errMalformed is returned by UnmarshalBinary for bytes that are not a
// record. Stores treat such a record as not found.
var errMalformed = errors.New("malformed session record")

// MarshalBinary encodes the record compactly: a version byte, the times as
// Unix nanoseconds, then length-prefixed strings. Data keys are written in
// sorted order, so equal records encode to equal bytes.
func (r Record) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, r.encodedSizeHint()))
}

// AppendBinary appends the encoding of r to b.
func (r Record) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, recordVersion)
	b = binary.AppendVarint(b, unixNano(r.Created))
	b = binary.AppendVarint(b, unixNano(r.LastSeen))
	b = binary.AppendVarint(b, unixNano(r.Expires))
	b = appendString(b, r.User)
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	keys := make([]string, 0, len(r.Data))
	for k := range r.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.Data[k])
	}
	return b, nil
}

func (r Record) encodedSizeHint() int {
	n := 1 + 3*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64 + len(r.User)
	for k, v := range r.Data {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	return n
}

// UnmarshalBinary decodes what MarshalBinary wrote. Any other input,
// including strings that are not valid UTF-8, is an error.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != recordVersion {
		return errMalformed
	}
	d := decoder{b: b[1:]}
	created, lastSeen, expires := d.varint(), d.varint(), d.varint()
	user := d.string()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) { // each pair takes at least 2 bytes
		return errMalformed
	}
	var data map[string]string
	if n > 0 {
		data = make(map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string()
			data[k] = d.string()
		}
	}
	if d.err != nil || len(d.b) != 0 || (n > 0 && uint64(len(data)) != n) {
		return errMalformed
	}
	*r = Record{
		User:     user,
		Data:     data,
		Created:  fromUnixNano(created),
		LastSeen: fromUnixNano(lastSeen),
		Expires:  fromUnixNano(expires),
	}
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(s) {
		d.err = errMalformed
		return ""
	}
	return s
}
