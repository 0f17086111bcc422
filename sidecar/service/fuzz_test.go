package service

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// FuzzReadRequest decodes what a client sends: a frame, then the JSON
// request in it, then the error frame the sidecar would answer with.
// Whatever the bytes, it fails cleanly. The seed corpus runs with go test;
// `go test -run '^$' -fuzz FuzzReadRequest ./sidecar/service/` explores further.
func FuzzReadRequest(f *testing.F) {
	frame := func(typ byte, payload string) []byte {
		b := make([]byte, 5+len(payload))
		b[0] = typ
		binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
		copy(b[5:], payload)
		return b
	}
	for _, seed := range [][]byte{
		frame('Q', `{"op":"status"}`),
		frame('Q', `{"op":"scan","database":"postgres","namespace":"public","table":"t","commit_lsn":1,"wait_ms":10,"now_lsn":2,"query":{"rels":[{"id":1,"oid":3}]},"params":[{"type":23,"value":"1"}]}`),
		frame('Q', `{"op":"create_table","database":"d","mirror_schema":"s","mirror_name":"m","source_schema":"s","source_name":"t","key_index":5,"creator_pid":7,"creator_start":"1.5","extension":9}`),
		frame('Q', `{"op":"attach","creator_xid":"12","foreign_table_oid":4294967295}`),
		frame('X', `{}`),
		{'Q', 0xff, 0xff, 0xff, 0xff},
		{'Q', 0, 0, 0, 10, '{'},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, payload, err := readFrame(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if len(payload) > maxRequestLength {
			t.Fatalf("readFrame returned %d bytes, over the limit", len(payload))
		}
		var req Request
		if err := json.Unmarshal(payload, &req); err != nil {
			errorPayload(userError("08P01", "malformed request: %v", err))
			return
		}
		_ = typ
		if req.Query != nil {
			for _, r := range req.Query.Rels {
				_ = r.OID
			}
		}
		errorPayload(userError("08P01", "unknown request %q", req.Op))
	})
}
