// Package powerfs is a vfs.FS that makes killing a process lose what a
// power failure would lose: file data that was written but not synced.
//
// It wraps another filesystem (the OS's, normally) and keeps every write
// in process memory until the file is synced; only Sync and SyncData copy
// the unsynced writes to the wrapped file and sync it. Reads, through any
// handle of the file, see the unsynced writes. So at every moment the
// wrapped filesystem holds exactly the synced state of the data, and a
// SIGKILL (which keeps the OS page cache, unlike a power failure) loses
// exactly the unsynced writes, as a power failure would.
//
// Directory entries: with Options.EntryJournal (see Open), a file created
// or linked is lost at the next Open unless its directory was synced
// after; without it, and for renames and removes always, the change goes
// to the wrapped filesystem at once and survives a kill as if the
// directory had been synced. A power failure may also keep a part of the
// unsynced data (a torn write); powerfs always loses all of it.
// SyncTo, which only asks the OS to start writing a prefix back and
// promises nothing, keeps the data in memory and reports a partial sync.
//
// It exists for fault-injection tests (kvnode's STRATA_DEBUG_POWER_LOSS
// hook, run by the jepsen harness); it is not meant for production.
package powerfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrReadOnly is returned by a write through a handle opened for reading.
var ErrReadOnly = errors.New("powerfs: file is open for reading only")

// FS is a vfs.FS whose unsynced writes live only in process memory. It is
// safe for concurrent use.
type FS struct {
	// base holds the synced state of every file.
	base vfs.FS
	// journal is Options.EntryJournal, cleaned; "" when entries are not
	// simulated.
	journal string

	mu struct {
		sync.Mutex
		// inodes are the files with unsynced data or open handles, by
		// cleaned name. Hard links share one inode. An inode leaves the
		// map when it has neither.
		inodes map[string]*inode
		// newEntries are the cleaned names created since their
		// directory's last sync (with a journal only).
		newEntries map[string]bool
	}
}

var _ vfs.FS = (*FS)(nil)

// New returns a filesystem over base (vfs.Default if nil) that keeps
// unsynced writes in memory.
func New(base vfs.FS) *FS {
	if base == nil {
		base = vfs.Default
	}
	fs := &FS{base: base}
	fs.mu.inodes = map[string]*inode{}
	return fs
}

// Unwrap returns the wrapped filesystem.
func (fs *FS) Unwrap() vfs.FS { return fs.base }

// UnsyncedBytes returns how many bytes of written data are held in memory
// only, over every file.
func (fs *FS) UnsyncedBytes() int64 {
	fs.mu.Lock()
	seen := map[*inode]bool{}
	var inos []*inode
	for _, ino := range fs.mu.inodes {
		if !seen[ino] {
			seen[ino] = true
			inos = append(inos, ino)
		}
	}
	fs.mu.Unlock()
	var n int64
	for _, ino := range inos {
		ino.mu.Lock()
		for _, e := range ino.mu.pending {
			n += int64(len(e.data))
		}
		ino.mu.Unlock()
	}
	return n
}

// inode is a file's unsynced state, shared by its handles and names.
type inode struct {
	mu struct {
		sync.Mutex
		// pending are the unsynced writes in the order they were made; a
		// later one wins where two overlap. A write that continues the
		// last one extends it.
		pending []extent
		// size is the file's size with the pending writes; valid while
		// pending is not empty.
		size int64
		// refs counts the open handles.
		refs int
		// writers are the open handles that can write, one of which
		// flushes the pending writes at a sync through a read-only handle.
		writers map[*file]bool
		// keeper is the wrapped handle of the last writer closed while
		// writes were pending, kept open so that a later sync can still
		// flush them. Closed once nothing is pending.
		keeper vfs.File
	}
}

// extent is one unsynced write.
type extent struct {
	off  int64
	data []byte
}

func (e extent) end() int64 { return e.off + int64(len(e.data)) }

func (fs *FS) key(name string) string { return filepath.Clean(name) }

// open returns the inode of name, made if needed, with a reference taken.
// fresh makes a new inode even if name has one (Create replaces the file).
func (fs *FS) open(name string, fresh bool) *inode {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := fs.key(name)
	ino := fs.mu.inodes[k]
	if ino != nil && fresh {
		// Create removes the old file: its unsynced data goes with it
		// unless a handle still holds it.
		ino.mu.Lock()
		if ino.mu.refs == 0 {
			ino.dropLocked()
		}
		ino.mu.Unlock()
		ino = nil
	}
	if ino == nil {
		ino = &inode{}
		ino.mu.writers = map[*file]bool{}
		fs.mu.inodes[k] = ino
	}
	ino.mu.Lock()
	ino.mu.refs++
	ino.mu.Unlock()
	return ino
}

// forgetLocked drops the names of inodes with neither handles nor unsynced
// data. fs.mu is held.
func (fs *FS) forgetLocked(ino *inode) {
	ino.mu.Lock()
	idle := ino.mu.refs == 0 && len(ino.mu.pending) == 0
	ino.mu.Unlock()
	if !idle {
		return
	}
	for k, v := range fs.mu.inodes {
		if v == ino {
			delete(fs.mu.inodes, k)
		}
	}
}

func (fs *FS) wrap(name string, f vfs.File, err error, writable, fresh bool) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	h := &file{fs: fs, f: f, writable: writable}
	h.ino = fs.open(name, fresh)
	if writable {
		h.ino.mu.Lock()
		h.ino.mu.writers[h] = true
		h.ino.mu.Unlock()
	}
	return h, nil
}

// Create creates name afresh (see vfs.FS); its data is unsynced until the
// file is synced.
func (fs *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.base.Create(name, category)
	if err == nil {
		if err = fs.entryCreated(name); err != nil {
			f.Close()
		}
	}
	return fs.wrap(name, f, err, true, true)
}

// Open opens name for reading; reads see its unsynced writes.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.base.Open(name, opts...)
	return fs.wrap(name, f, err, false, false)
}

// OpenReadWrite opens name for reading and writing, creating it if needed.
func (fs *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	_, statErr := fs.base.Stat(name)
	f, err := fs.base.OpenReadWrite(name, category, opts...)
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		if err = fs.entryCreated(name); err != nil {
			f.Close()
		}
	}
	return fs.wrap(name, f, err, true, false)
}

// OpenDir opens a directory; its Sync syncs the wrapped directory and
// makes the entries created in it durable.
func (fs *FS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.base.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &dirFile{File: f, fs: fs, name: name}, nil
}

// ReuseForWrite renames oldname to newname and opens it for writing
// without truncating it.
func (fs *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.Rename(oldname, newname); err != nil {
		return nil, err
	}
	f, err := fs.base.OpenReadWrite(newname, category)
	return fs.wrap(newname, f, err, true, false)
}

// Link makes newname a hard link to oldname; the two share unsynced data.
func (fs *FS) Link(oldname, newname string) error {
	if err := fs.base.Link(oldname, newname); err != nil {
		return err
	}
	if err := fs.entryCreated(newname); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if ino := fs.mu.inodes[fs.key(oldname)]; ino != nil {
		fs.mu.inodes[fs.key(newname)] = ino
	} else {
		delete(fs.mu.inodes, fs.key(newname))
	}
	return nil
}

// Remove removes name; its unsynced data goes with its last name and
// handle.
func (fs *FS) Remove(name string) error {
	if err := fs.base.Remove(name); err != nil {
		return err
	}
	fs.unname(fs.key(name), false)
	return fs.entriesRemoved(name, false)
}

// RemoveAll removes name and everything under it.
func (fs *FS) RemoveAll(name string) error {
	err := fs.base.RemoveAll(name)
	fs.unname(fs.key(name), true)
	return errors.Join(err, fs.entriesRemoved(name, true))
}

// unname drops the name k (and, with under, every name below it).
func (fs *FS) unname(k string, under bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for name, ino := range fs.mu.inodes {
		if name == k || (under && strings.HasPrefix(name, k+string(filepath.Separator))) {
			delete(fs.mu.inodes, name)
			ino.mu.Lock()
			if ino.mu.refs == 0 {
				// Unreachable now: nothing can sync its writes.
				ino.dropLocked()
			}
			ino.mu.Unlock()
		}
	}
}

// Rename renames oldname to newname; unsynced data moves with the file.
func (fs *FS) Rename(oldname, newname string) error {
	if err := fs.base.Rename(oldname, newname); err != nil {
		return err
	}
	if err := fs.entryRenamed(oldname, newname); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	ok, nk := fs.key(oldname), fs.key(newname)
	if ok == nk {
		return nil
	}
	if old := fs.mu.inodes[nk]; old != nil {
		delete(fs.mu.inodes, nk)
		old.mu.Lock()
		if old.mu.refs == 0 {
			old.dropLocked()
		}
		old.mu.Unlock()
		fs.forgetLocked(old)
	}
	if ino := fs.mu.inodes[ok]; ino != nil {
		delete(fs.mu.inodes, ok)
		fs.mu.inodes[nk] = ino
	}
	return nil
}

// Stat describes name; its size counts unsynced writes.
func (fs *FS) Stat(name string) (vfs.FileInfo, error) {
	fi, err := fs.base.Stat(name)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	ino := fs.mu.inodes[fs.key(name)]
	fs.mu.Unlock()
	return withSize(ino, fi), nil
}

// MkdirAll, Lock, List, the path functions and GetDiskUsage are the
// wrapped filesystem's.
func (fs *FS) MkdirAll(dir string, perm os.FileMode) error { return fs.base.MkdirAll(dir, perm) }
func (fs *FS) Lock(name string) (io.Closer, error)         { return fs.base.Lock(name) }

func (fs *FS) PathBase(path string) string    { return fs.base.PathBase(path) }
func (fs *FS) PathJoin(elem ...string) string { return fs.base.PathJoin(elem...) }
func (fs *FS) PathDir(path string) string     { return fs.base.PathDir(path) }
func (fs *FS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	return fs.base.GetDiskUsage(path)
}

// List lists dir, without the entry journal.
func (fs *FS) List(dir string) ([]string, error) {
	names, err := fs.base.List(dir)
	if err != nil || fs.journal == "" || fs.key(dir) != filepath.Dir(fs.journal) {
		return names, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == filepath.Base(fs.journal) }), nil
}

// dropLocked forgets the unsynced writes. ino.mu is held.
func (ino *inode) dropLocked() {
	ino.mu.pending = nil
	if ino.mu.keeper != nil {
		_ = ino.mu.keeper.Close()
		ino.mu.keeper = nil
	}
}

// withSize is fi with the size of ino's unsynced writes, if it has any.
func withSize(ino *inode, fi vfs.FileInfo) vfs.FileInfo {
	if ino == nil {
		return fi
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if len(ino.mu.pending) == 0 || ino.mu.size <= fi.Size() {
		return fi
	}
	return sizedInfo{FileInfo: fi, size: ino.mu.size}
}

type sizedInfo struct {
	vfs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }

// file is a handle. Write-side calls (Write, WriteAt, Sync...) come from
// one goroutine at a time (vfs.File's contract); reads may be concurrent.
type file struct {
	fs       *FS
	ino      *inode
	f        vfs.File // the wrapped handle
	writable bool

	// pos is the offset of Read and Write (one sequential user at a time,
	// as with an os.File).
	pos int64
}

var _ vfs.File = (*file)(nil)

// ReadAt reads the synced data overlaid with the unsynced writes.
func (h *file) ReadAt(p []byte, off int64) (int, error) {
	ino := h.ino
	ino.mu.Lock()
	if len(ino.mu.pending) == 0 {
		// The common case, unlocked so that reads run in parallel: a
		// write racing with it may or may not be seen, as with any file.
		ino.mu.Unlock()
		return h.f.ReadAt(p, off)
	}
	defer ino.mu.Unlock()
	if off >= ino.mu.size {
		return 0, io.EOF
	}
	want := int64(len(p))
	if off+want > ino.mu.size {
		want = ino.mu.size - off
	}
	n, err := h.f.ReadAt(p[:want], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	clear(p[n:want]) // beyond the synced data and not overwritten: a hole
	end := off + want
	for _, e := range ino.mu.pending {
		lo, hi := max(e.off, off), min(e.end(), end)
		if lo < hi {
			copy(p[lo-off:hi-off], e.data[lo-e.off:hi-e.off])
		}
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// Read reads at the handle's offset.
func (h *file) Read(p []byte) (int, error) {
	n, err := h.ReadAt(p, h.pos)
	h.pos += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// WriteAt keeps a copy of p in memory as an unsynced write.
func (h *file) WriteAt(p []byte, off int64) (int, error) {
	if !h.writable {
		return 0, ErrReadOnly
	}
	if off < 0 {
		return 0, fmt.Errorf("powerfs: write at negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	ino := h.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if len(ino.mu.pending) == 0 {
		fi, err := h.f.Stat()
		if err != nil {
			return 0, err
		}
		ino.mu.size = fi.Size()
	}
	if last := len(ino.mu.pending) - 1; last >= 0 && ino.mu.pending[last].end() == off {
		ino.mu.pending[last].data = append(ino.mu.pending[last].data, p...)
	} else {
		ino.mu.pending = append(ino.mu.pending, extent{off: off, data: append([]byte(nil), p...)})
	}
	ino.mu.size = max(ino.mu.size, off+int64(len(p)))
	return len(p), nil
}

// Write writes at the handle's offset.
func (h *file) Write(p []byte) (int, error) {
	n, err := h.WriteAt(p, h.pos)
	h.pos += int64(n)
	return n, err
}

// flush copies the unsynced writes to the wrapped file, through this
// handle or one that can write, and returns the wrapped handle to sync.
func (h *file) flush() (vfs.File, error) {
	ino := h.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	w := h.f
	if !h.writable {
		w = ino.mu.keeper
		for o := range ino.mu.writers {
			w = o.f
			break
		}
	}
	if len(ino.mu.pending) == 0 {
		return h.f, nil
	}
	if w == nil {
		return nil, fmt.Errorf("powerfs: %d unsynced writes and no handle that can write them", len(ino.mu.pending))
	}
	for i, e := range ino.mu.pending {
		if _, err := w.WriteAt(e.data, e.off); err != nil {
			ino.mu.pending = ino.mu.pending[i:]
			return nil, err
		}
	}
	// In the wrapped file's (the OS's) cache now: a kill keeps it, as a
	// power failure during the sync might.
	ino.mu.pending = nil
	if ino.mu.keeper != nil && ino.mu.keeper != w {
		_ = ino.mu.keeper.Close()
		ino.mu.keeper = nil
	}
	return w, nil
}

// Sync writes the unsynced data to the wrapped file and syncs it.
func (h *file) Sync() error {
	w, err := h.flush()
	if err != nil {
		return err
	}
	if err := w.Sync(); err != nil {
		return err
	}
	h.closeKeeper()
	return nil
}

// SyncData is Sync without the metadata.
func (h *file) SyncData() error {
	w, err := h.flush()
	if err != nil {
		return err
	}
	if err := w.SyncData(); err != nil {
		return err
	}
	h.closeKeeper()
	return nil
}

// closeKeeper closes a kept writer once nothing is pending.
func (h *file) closeKeeper() {
	ino := h.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if len(ino.mu.pending) == 0 && ino.mu.keeper != nil {
		_ = ino.mu.keeper.Close()
		ino.mu.keeper = nil
	}
}

// SyncTo promises no durability (the OS only starts writing back), so the
// data stays in memory: it reports a partial sync.
func (h *file) SyncTo(int64) (bool, error) { return false, nil }

// Stat describes the file; its size counts unsynced writes.
func (h *file) Stat() (vfs.FileInfo, error) {
	fi, err := h.f.Stat()
	if err != nil {
		return nil, err
	}
	return withSize(h.ino, fi), nil
}

// Close closes the handle. Unsynced writes stay pending (a close does not
// sync); a writer closed while some are pending keeps its wrapped handle
// open so that a later sync can still write them.
func (h *file) Close() error {
	fs, ino := h.fs, h.ino
	fs.mu.Lock()
	named := false
	for _, v := range fs.mu.inodes {
		if v == ino {
			named = true
			break
		}
	}
	ino.mu.Lock()
	ino.mu.refs--
	delete(ino.mu.writers, h)
	keep := h.writable && named && len(ino.mu.pending) > 0
	if keep {
		if ino.mu.keeper != nil {
			_ = ino.mu.keeper.Close()
		}
		ino.mu.keeper = h.f
	}
	if !named && ino.mu.refs == 0 {
		// Removed and now closed: nothing can reach its writes.
		ino.dropLocked()
	}
	ino.mu.Unlock()
	fs.forgetLocked(ino)
	fs.mu.Unlock()
	if keep {
		return nil
	}
	return h.f.Close()
}

// Preallocate reserves space in the wrapped file.
func (h *file) Preallocate(off, length int64) error { return h.f.Preallocate(off, length) }

// Prefetch is a no-op: the wrapped file may not hold the data yet.
func (h *file) Prefetch(int64, int64) error { return nil }

// Fd returns the wrapped file's descriptor. Pebble uses it only to
// preallocate; with vfs.InvalidFd its syncing files would turn their
// periodic SyncTo into a full Sync.
func (h *file) Fd() uintptr { return h.f.Fd() }
