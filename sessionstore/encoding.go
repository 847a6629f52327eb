package sessionstore

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
	"unicode/utf8"
)

// recordVersion is the first byte of every record MarshalBinary writes, so
// the format can change without misreading old records. Records of version
// 1, whose only identity field is User, are still read. Version 3 is
// version 2 followed by Amr; it is written only for a record that has an
// Amr, so that a record without one is read by an instance from before
// second factors (a mixed fleet during an upgrade) as before.
const (
	recordVersion1 = 1
	recordVersion  = 2
	recordVersion3 = 3
)

// errMalformed is returned by UnmarshalBinary for bytes that are not a
// record. Stores treat such a record as not found.
var errMalformed = errors.New("malformed session record")

// errNotUTF8 is returned by MarshalBinary for a record holding a string
// that is not valid UTF-8: written, it could never be read back.
var errNotUTF8 = errors.New("session record: string is not valid UTF-8")

// MarshalBinary encodes the record compactly: a version byte, the times as
// Unix nanoseconds, then length-prefixed strings. Groups keep their order;
// data keys are written in sorted order, so equal records encode to equal
// bytes. A string that is not valid UTF-8 is an error.
func (r Record) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, r.encodedSizeHint()))
}

// AppendBinary appends the encoding of r to b.
//
// Version 2: version, created, last seen, expires (varints), user, source,
// fingerprint, site, client IP, user agent (strings), the number of groups
// and each group, the number of data pairs and each key and value.
// Version 1 had only user between the times and the data.
func (r Record) AppendBinary(b []byte) ([]byte, error) {
	if !r.validUTF8() {
		return nil, errNotUTF8
	}
	if len(r.Amr) > 0 {
		b = append(b, recordVersion3)
	} else {
		b = append(b, recordVersion)
	}
	b = binary.AppendVarint(b, unixNano(r.Created))
	b = binary.AppendVarint(b, unixNano(r.LastSeen))
	b = binary.AppendVarint(b, unixNano(r.Expires))
	for _, s := range r.identity() {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Groups)))
	for _, g := range r.Groups {
		b = appendString(b, g)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	keys := make([]string, 0, len(r.Data))
	for k := range r.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.Data[k])
	}
	if len(r.Amr) > 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Amr)))
		for _, a := range r.Amr {
			b = appendString(b, a)
		}
	}
	return b, nil
}

// validUTF8 reports whether every string in r is valid UTF-8.
func (r Record) validUTF8() bool {
	for _, s := range r.identity() {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, g := range r.Groups {
		if !utf8.ValidString(g) {
			return false
		}
	}
	for _, a := range r.Amr {
		if !utf8.ValidString(a) {
			return false
		}
	}
	for k, v := range r.Data {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// identity returns the record's single-string identity fields in the order
// they are encoded.
func (r Record) identity() [6]string {
	return [6]string{r.User, r.Source, r.Fingerprint, r.Site, r.ClientIP, r.UserAgent}
}

func (r Record) encodedSizeHint() int {
	n := 1 + 3*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64
	for _, s := range r.identity() {
		n += len(s) + binary.MaxVarintLen64
	}
	for _, g := range r.Groups {
		n += len(g) + binary.MaxVarintLen64
	}
	for k, v := range r.Data {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	for _, a := range r.Amr {
		n += len(a) + binary.MaxVarintLen64
	}
	return n
}

// UnmarshalBinary decodes what MarshalBinary wrote, in either version. Any
// other input, including strings that are not valid UTF-8, a count larger
// than what follows, duplicate data keys and trailing bytes, is an error.
// The record's strings share one copy of b.
func (r *Record) UnmarshalBinary(b []byte) error {
	return r.unmarshal(string(b))
}

// unmarshal is UnmarshalBinary on an encoded record held as a string: the
// record's strings are substrings of s, nothing is copied.
func (r *Record) unmarshal(s string) error {
	if len(s) == 0 || s[0] < recordVersion1 || s[0] > recordVersion3 {
		return errMalformed
	}
	version := s[0]
	d := decoder{s: s[1:]}
	var rec Record
	created, lastSeen, expires := d.varint(), d.varint(), d.varint()
	rec.User = d.string()
	if version >= 2 {
		rec.Source = d.string()
		rec.Fingerprint = d.string()
		rec.Site = d.string()
		rec.ClientIP = d.string()
		rec.UserAgent = d.string()
		n := d.count() // each group takes at least 1 byte
		if n > 0 {
			rec.Groups = make([]string, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				rec.Groups = append(rec.Groups, d.string())
			}
		}
	}
	n := d.count() // each pair takes at least 2 bytes
	if n > 0 {
		rec.Data = make(map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string()
			rec.Data[k] = d.string()
		}
	}
	if version >= 3 {
		n := d.count()
		if n == 0 && d.err == nil {
			d.err = errMalformed // written only with an Amr
		}
		rec.Amr = make([]string, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			rec.Amr = append(rec.Amr, d.string())
		}
	}
	if d.err != nil || len(d.s) != 0 || uint64(len(rec.Data)) != n {
		return errMalformed
	}
	rec.Created = fromUnixNano(created)
	rec.LastSeen = fromUnixNano(lastSeen)
	rec.Expires = fromUnixNano(expires)
	*r = rec
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

// decoder reads an encoded record from a string; the strings it returns
// are substrings of it.
type decoder struct {
	s   string
	err error
}

// head is what a varint at the start of d.s may take, as bytes: at most
// binary.MaxVarintLen64, a copy small enough to stay on the stack.
func (d *decoder) head() []byte {
	return []byte(d.s[:min(len(d.s), binary.MaxVarintLen64)])
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.head())
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.s = d.s[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.head())
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.s = d.s[n:]
	return v
}

// count reads a number of items that follow, each at least one byte, so
// that a huge count is rejected before anything is allocated for it.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.s)) {
		d.err = errMalformed
		return 0
	}
	return n
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.err = errMalformed
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	if !utf8.ValidString(s) {
		d.err = errMalformed
		return ""
	}
	return s
}
