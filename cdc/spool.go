package cdc

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// spool keeps the changes of a transaction the server streams before it
// commits (protocol v2 streaming) in a file, so a large transaction is never
// held in memory. At commit the changes are replayed in order; at abort the
// file is removed. Changes of aborted subtransactions are skipped at replay.
type spool struct {
	path    string
	f       *os.File
	w       *bufio.Writer
	aborted map[uint32]bool // aborted subtransactions
	changes int64
}

func newSpool(dir string, xid uint32) (*spool, error) {
	f, err := os.CreateTemp(dir, fmt.Sprintf("stream-%d-*.spool", xid))
	if err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	return &spool{path: f.Name(), f: f, w: bufio.NewWriterSize(f, 256<<10), aborted: map[uint32]bool{}}, nil
}

// add appends one pgoutput message (as received, in-stream form).
func (s *spool) add(msg []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
	if _, err := s.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := s.w.Write(msg)
	s.changes++
	return err
}

// replay calls fn with every message, in order.
func (s *spool) replay(fn func(msg []byte) error) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(s.f, 256<<10)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

// remove deletes the spool file.
func (s *spool) remove() {
	s.f.Close()
	os.Remove(s.path)
}

// removeSpools deletes spool files left in dir by an earlier session.
func removeSpools(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "stream-*.spool"))
	for _, m := range matches {
		os.Remove(m)
	}
}
