package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestWatchFile: each way the configuration file changes on disk is
// noticed — written in place, replaced by a rename, removed and written
// again, and, when the path is a symbolic link (a Kubernetes ConfigMap
// volume: hookgate.yaml -> ..data/hookgate.yaml, ..data -> a dated
// directory), its target written in place or the link swapped to a new
// directory — and a change to another file beside it is not.
func TestWatchFile(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, target, path string) {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	// configMap lays out a ConfigMap volume in dir and returns the
	// configuration's path.
	configMap := func(t *testing.T, dir string) string {
		os.Mkdir(filepath.Join(dir, "..2026_01"), 0o700)
		write(t, filepath.Join(dir, "..2026_01", "hookgate.yaml"), "a")
		link(t, "..2026_01", filepath.Join(dir, "..data"))
		link(t, "..data/hookgate.yaml", filepath.Join(dir, "hookgate.yaml"))
		return filepath.Join(dir, "hookgate.yaml")
	}
	plain := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "hookgate.yaml")
		write(t, path, "a")
		return path
	}
	tests := []struct {
		name   string
		layout func(t *testing.T, dir string) string
		change func(t *testing.T, dir, path string)
		want   bool
	}{
		{"written in place", plain, func(t *testing.T, _, path string) { write(t, path, "b") }, true},
		{"renamed over", plain, func(t *testing.T, dir, path string) {
			write(t, filepath.Join(dir, "tmp"), "b")
			os.Rename(filepath.Join(dir, "tmp"), path)
		}, true},
		{"removed and written again", plain, func(t *testing.T, _, path string) {
			os.Remove(path)
			write(t, path, "b")
		}, true},
		{"another file", plain, func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "other.yaml"), "b") }, false},
		{"link's target written in place", configMap, func(t *testing.T, dir, _ string) {
			write(t, filepath.Join(dir, "..2026_01", "hookgate.yaml"), "b")
		}, true},
		{"link swapped to a new directory", configMap, func(t *testing.T, dir, _ string) {
			os.Mkdir(filepath.Join(dir, "..2026_02"), 0o700)
			write(t, filepath.Join(dir, "..2026_02", "hookgate.yaml"), "b")
			link(t, "..2026_02", filepath.Join(dir, "..data_tmp"))
			os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
			os.RemoveAll(filepath.Join(dir, "..2026_01"))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.layout(t, dir)
			changed := make(chan struct{}, 16)
			stop, err := WatchFile(path, 20*time.Millisecond, zap.NewNop(), func() { changed <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			tc.change(t, dir, path)
			select {
			case <-changed:
				if !tc.want {
					t.Fatal("noticed a change to another file")
				}
			case <-time.After(time.Second):
				if tc.want {
					t.Fatal("the change was not noticed")
				}
			}
		})
	}
}

// TestWatchFileFollowsTheLink: after the link is swapped to a new
// directory, an edit in place of the new target is noticed too.
func TestWatchFileFollowsTheLink(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"..v1", "..v2"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
		os.WriteFile(filepath.Join(dir, d, "hookgate.yaml"), []byte(d), 0o600)
	}
	os.Symlink("..v1", filepath.Join(dir, "..data"))
	os.Symlink("..data/hookgate.yaml", filepath.Join(dir, "hookgate.yaml"))
	changed := make(chan struct{}, 16)
	stop, err := WatchFile(filepath.Join(dir, "hookgate.yaml"), 20*time.Millisecond, zap.NewNop(), func() { changed <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	os.Symlink("..v2", filepath.Join(dir, "..tmp"))
	os.Rename(filepath.Join(dir, "..tmp"), filepath.Join(dir, "..data"))
	os.RemoveAll(filepath.Join(dir, "..v1"))
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(time.Second):
			t.Fatalf("%s was not noticed", what)
		}
	}
	wait("the swap")
	time.Sleep(100 * time.Millisecond)
	for len(changed) > 0 {
		<-changed
	}
	os.WriteFile(filepath.Join(dir, "..v2", "hookgate.yaml"), []byte("v2, edited"), 0o600)
	wait("an edit of the new target")
}
