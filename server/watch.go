package server

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchFiles watches the directories of files (files are usually replaced
// by rename, or by switching a symbolic link) until the server closes.
// When an event that relevant accepts has been followed by quiet for
// settle, it calls changed. what names the files in log messages.
func (s *Server) watchFiles(what string, files []string, settle time.Duration, relevant func(fsnotify.Event) bool, changed func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("not watching the "+what, "err", err)
		return
	}
	defer w.Close()
	for _, f := range files {
		if err := w.Add(filepath.Dir(f)); err != nil {
			s.log.Warn("not watching the "+what, "dir", filepath.Dir(f), "err", err)
			return
		}
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-s.closing:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if relevant(ev) {
				debounce = time.After(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("watching the "+what, "err", err)
		case <-debounce:
			debounce = nil
			changed()
		}
	}
}
