package powerfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure Open. The zero value is New's behaviour.
type Options struct {
	// EntryJournal, if set, makes new directory entries durable only at a
	// sync of their directory: the names of files created (or linked)
	// since their directory's last sync are kept in this file, and Open
	// removes them, as a power failure would have. The journal is the
	// harness's own record, never synced (a kill keeps the OS cache), and
	// is hidden from List. Renames and removes still reach the disk at
	// once: a renamed file keeps the durability of its entry. Default: ""
	// (every entry is durable at once).
	EntryJournal string
}

// Open returns a filesystem over base (vfs.Default if nil) like New, and
// with opts.EntryJournal first undoes the entries the previous process
// (killed: its power cut) had not made durable.
func Open(base vfs.FS, opts Options) (*FS, error) {
	fs := New(base)
	if opts.EntryJournal == "" {
		return fs, nil
	}
	fs.journal = filepath.Clean(opts.EntryJournal)
	fs.mu.newEntries = map[string]bool{}
	lost, err := readJournal(fs.base, fs.journal)
	if err != nil {
		return nil, err
	}
	for _, name := range lost {
		if err := fs.base.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("powerfs: remove %s, created but not made durable: %w", name, err)
		}
	}
	if err := fs.base.MkdirAll(filepath.Dir(fs.journal), 0o755); err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs, fs.writeJournalLocked()
}

// readJournal returns the names the journal holds: the entries Open
// removes.
func readJournal(base vfs.FS, journal string) ([]string, error) {
	f, err := base.Open(journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			names = append(names, l)
		}
	}
	// A journal cut short by the kill loses a line: that entry survives,
	// as it may after a power failure.
	return names, sc.Err()
}

// writeJournalLocked rewrites the journal from fs.mu.newEntries. fs.mu is
// held.
func (fs *FS) writeJournalLocked() error {
	names := make([]string, 0, len(fs.mu.newEntries))
	for k := range fs.mu.newEntries {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	f, err := fs.base.Create(fs.journal, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("powerfs: entry journal: %w", err)
	}
	_, err = f.Write([]byte(b.String()))
	return errors.Join(err, f.Close())
}

// entryCreated records that name is a new, not yet durable entry.
func (fs *FS) entryCreated(name string) error {
	if fs.journal == "" {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mu.newEntries[fs.key(name)] = true
	return fs.writeJournalLocked()
}

// entryRenamed moves the durability of oldname's entry to newname.
func (fs *FS) entryRenamed(oldname, newname string) error {
	if fs.journal == "" {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	ok, nk := fs.key(oldname), fs.key(newname)
	isNew := fs.mu.newEntries[ok]
	delete(fs.mu.newEntries, ok)
	delete(fs.mu.newEntries, nk)
	if isNew {
		fs.mu.newEntries[nk] = true
	}
	return fs.writeJournalLocked()
}

// entriesRemoved forgets name (and, with under, every entry below it).
func (fs *FS) entriesRemoved(name string, under bool) error {
	if fs.journal == "" {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := fs.key(name)
	for e := range fs.mu.newEntries {
		if e == k || (under && strings.HasPrefix(e, k+string(filepath.Separator))) {
			delete(fs.mu.newEntries, e)
		}
	}
	return fs.writeJournalLocked()
}

// dirSynced makes the entries of dir durable.
func (fs *FS) dirSynced(dir string) error {
	if fs.journal == "" {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := fs.key(dir)
	for e := range fs.mu.newEntries {
		if filepath.Dir(e) == k {
			delete(fs.mu.newEntries, e)
		}
	}
	return fs.writeJournalLocked()
}

// dirFile is a directory handle whose Sync makes its new entries durable.
type dirFile struct {
	vfs.File
	fs   *FS
	name string
}

// Sync syncs the directory; its entries are durable from then on.
func (d *dirFile) Sync() error {
	if err := d.File.Sync(); err != nil {
		return err
	}
	return d.fs.dirSynced(d.name)
}
