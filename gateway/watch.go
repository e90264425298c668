package gateway

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// WatchFile calls changed, debounced, whenever the file at path is written,
// created, renamed over or removed and re-created — an editor's
// write-to-temp-then-rename included, which is why the directory is
// watched rather than the file. When path is a symbolic link, the file it
// leads to is followed as well: its directory is watched for edits of it,
// and a link in path's directory that now leads elsewhere (a Kubernetes
// ConfigMap volume swaps its ..data link) is a change. It returns a
// function that stops watching.
func WatchFile(path string, debounce time.Duration, log *zap.Logger, changed func()) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	// target is where path leads, links followed; a change to it is
	// reported under targetName, in targetDir when that is watched
	// besides dir. Only the goroutine below uses them once it runs.
	var target, targetName, targetDir string
	follow := func() (moved bool) {
		t, err := filepath.EvalSymlinks(abs)
		if err != nil || t == target {
			return false // gone for now, or where it was
		}
		target = t
		old := targetDir
		if realDir, err := filepath.EvalSymlinks(dir); err == nil && filepath.Dir(t) == realDir {
			targetName, targetDir = filepath.Join(dir, filepath.Base(t)), ""
		} else {
			targetName, targetDir = t, filepath.Dir(t)
			if err := w.Add(targetDir); err != nil {
				log.Warn("watching the configuration file's link target", zap.Error(err))
			}
		}
		if old != "" && old != targetDir {
			_ = w.Remove(old) // fails when the directory is gone, as it is then unwatched
		}
		return true
	}
	follow()
	done := make(chan struct{})
	go func() {
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-done:
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				name := filepath.Clean(ev.Name)
				hit := name == abs || name == targetName
				// A link in path's directory may have been swapped.
				if (name == abs || targetName != abs && filepath.Dir(name) == dir) && follow() {
					hit = true
				}
				if !hit {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(debounce)
				} else {
					timer.Reset(debounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("watching the configuration file", zap.Error(err))
			case <-fire:
				fire = nil
				changed()
			}
		}
	}()
	return func() { close(done); w.Close() }, nil
}
