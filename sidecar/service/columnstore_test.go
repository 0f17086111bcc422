package service

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeColumnstore must read what encoding/json reads, and refuse what
// it refuses (given JSON the request frame's decoding accepted).
func TestDecodeColumnstoreRows(t *testing.T) {
	valid := []string{
		`{"op":"columnstore_append","metadata_location":"/m/00001-x.metadata.json","columns":[{"name":"a","type_oid":23,"typmod":-1}],"rows":[["1","text",null],["2",null,"x"]]}`,
		`{"rows":[],"metadata_location":"m"}`,
		`{"metadata_location":"m"}`,
		`{}`,
		`{"rows":null}`,
		`{ "columns" : [ {"name":"rows"} ] , "rows" : [ [ "a\"b" , "c\\d" , "\u00e9\n\t" ] , [ ] , [null] ] , "table":"t" }`,
		`{"metadata_location":"a,\"rows\":[","rows":[["é","日本", "\ud83d\ude00", ""]]}`,
		"{\n\"rows\":\t[\r\n[\"1\"]\n]\n}",
	}
	for _, doc := range valid {
		var want columnstoreRequest
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		got, err := decodeColumnstore(&Request{Op: "columnstore_append", raw: []byte(doc)})
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\ngot  %s\nwant %s", doc, show(*got), show(want))
		}
	}
	invalid := []string{
		`{"rows":[["1",2]]}`,
		`{"rows":[["1"]`,
		`{"rows":{"a":"b"}}`,
		`{"rows":[["1" "2"]]}`,
		`{"rows":[["1"],]}`,
		`{"rows":["1"]}`,
		`{"rows":[[nul]]}`,
		`{"rows":[["a` + "\x01" + `"]]}`,
		`[]`,
	}
	for _, doc := range invalid {
		if got, err := decodeColumnstore(&Request{Op: "columnstore_append", raw: []byte(doc)}); err == nil {
			t.Errorf("%s: accepted as %s", doc, show(*got))
		}
	}
}

func show(r columnstoreRequest) string {
	b, _ := json.Marshal(r)
	return string(b)
}
