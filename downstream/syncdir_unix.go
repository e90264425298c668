//go:build !windows

package downstream

import "os"

// syncDir makes dir's entries durable: a file or directory created in it
// survives a crash only once dir itself is synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
