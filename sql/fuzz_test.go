package sql

import (
	"encoding/json"
	"testing"

	"github.com/pgmooncake/mooncake/catalog"
)

// FuzzPlanQuery plans query trees as the sidecar receives them from the
// socket (or, with pg_mooncake.sidecar_listen, from the network): whatever
// the bytes, planning returns a plan or an error, never panics. The seed
// corpus runs with go test; `go test -run '^$' -fuzz FuzzPlanQuery ./sql/`
// explores further.
func FuzzPlanQuery(f *testing.F) {
	for _, seed := range []string{
		`{"rels":[{"id":1,"oid":16384}],"from":{"rel":1},"targets":[{"k":"var","rel":1,"col":"id","type":20}]}`,
		`{"rels":[{"id":1}],"from":{"rel":1},"where":[{"k":"op","name":"<","schema":"pg_catalog","type":16,"args":[{"k":"var","rel":1,"col":"n","type":1700,"typmod":655366},{"k":"const","type":1700,"value":"1.5"}]}],"targets":[{"k":"var","rel":1,"col":"id","type":20}]}`,
		`{"rels":[{"id":1}],"from":{"rel":1},"grouped":true,"targets":[{"k":"agg","name":"count","schema":"pg_catalog","type":20,"star":true},{"k":"agg","name":"sum","schema":"pg_catalog","type":1700,"args":[{"k":"var","rel":1,"col":"n","type":1700,"typmod":655366}]}],"group_by":[{"k":"var","rel":1,"col":"t","type":25,"incoll":"c"}],"order_by":[{"expr":{"k":"var","rel":1,"col":"t","type":25},"op":">","nulls_first":true}],"limit":{"k":"const","type":20,"value":"10"}}`,
		`{"rels":[{"id":1},{"id":2}],"from":{"join":"left","left":{"rel":1},"right":{"rel":2},"on":[{"k":"op","name":"=","schema":"pg_catalog","type":16,"args":[{"k":"var","rel":1,"col":"id","type":20},{"k":"var","rel":2,"col":"id","type":20}]}]},"targets":[{"k":"func","name":"date_trunc","schema":"pg_catalog","format":"call","type":1114,"args":[{"k":"const","type":25,"value":"month"},{"k":"var","rel":2,"col":"ts","type":1114}]}]}`,
		`{"rels":[{"id":1}],"from":{"rel":1},"targets":[{"k":"case","type":23,"args":[{"k":"isnull","args":[{"k":"var","rel":1,"col":"id","type":20}]},{"k":"const","type":23,"value":"1"},{"k":"param","id":1,"type":23}]}],"sample":100}`,
		`{}`, `[]`, `{"rels":[{"id":1}],"from":{"join":"full"}}`,
	} {
		f.Add([]byte(seed))
	}
	m := &catalog.Mirror{Database: "fuzz", Namespace: "public", Name: "t"}
	m.Columns = []catalog.Column{
		{Name: "id", Type: fuzzType(f, catalog.OIDInt8, -1), ID: 1},
		{Name: "n", Type: fuzzType(f, catalog.OIDNumeric, 655366), ID: 2},
		{Name: "t", Type: fuzzType(f, 25, -1), ID: 3},
		{Name: "ts", Type: fuzzType(f, 1114, -1), ID: 4},
	}
	m.Key = []int{0}
	rels := map[int]Relation{1: m, 2: m}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q Query
		if err := json.Unmarshal(data, &q); err != nil {
			return
		}
		for _, params := range [][]Param{nil, {{Type: 23, Value: nil}}} {
			for _, wide := range []bool{false, true} {
				PlanQuery(&q, rels, PlanOptions{Params: params, Wide: wide, TZPushed: true, UTC: true})
			}
		}
	})
}

func fuzzType(f *testing.F, oid uint32, typmod int32) catalog.ColumnType {
	t, err := catalog.ResolveType(oid, typmod, "")
	if err != nil {
		f.Fatalf("ResolveType(%d, %d): %v", oid, typmod, err)
	}
	return t
}
