// Package files reads the files an operator names in the configuration
// (secrets, users files) without reading more than such a file can be.
package files

import (
	"fmt"
	"io"
	"os"
)

// ReadAtMost reads a file of at most limit bytes.
func ReadAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d KiB", path, limit>>10)
	}
	return b, err
}
