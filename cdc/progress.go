package cdc

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Progress is one copy of a source under way: the initial copy of
// create_table, or a copy made again (resync_table, or a schema change the
// mirror cannot follow in place). mooncake.copy_progress shows them all;
// create_table and resync_table also report them as NOTICEs.
type Progress struct {
	Database   string
	Namespace  string // the mirror's Iceberg namespace and name
	Table      string
	Source     string // the source as the copy names it
	ForeignOID uint32 // the mirror's foreign table, 0 while create_table has not made it
	Command    string // CommandCreate or CommandResync
	StartedAt  time.Time

	pid       atomic.Int32 // the backend that asked, 0 when none did
	phase     atomic.Pointer[string]
	rows      atomic.Int64 // rows copied so far
	bytes     atomic.Int64 // bytes of the copy (binary COPY) so far
	estimated atomic.Int64 // the planner's estimate of the source's rows, -1 unknown
}

// Commands that copy a source: create_table's initial copy, a copy made
// again (shown as resync_table while a backend's resync_table waits for it).
const (
	CommandCreate      = "create_table"
	CommandResync      = "resync"
	CommandResyncTable = "resync_table"
)

// Phases of a copy.
const (
	PhaseStarting = "starting"         // waiting for the snapshot (the slot's consistent point)
	PhaseCopying  = "copying"          // reading the source in the snapshot
	PhaseWriting  = "writing"          // writing the copy into the mirror's data files
	PhaseSwapping = "waiting to swap"  // copy written; the stream swaps it in between transactions
	PhaseApplying = "applying changes" // the changes the source took meanwhile
)

var progressReg struct {
	sync.Mutex
	all map[*Progress]struct{}
}

// StartProgress registers a copy; Done removes it.
func StartProgress(p *Progress, pid int) *Progress {
	p.StartedAt = time.Now()
	p.pid.Store(int32(pid))
	p.estimated.Store(-1)
	p.SetPhase(PhaseStarting)
	progressReg.Lock()
	if progressReg.all == nil {
		progressReg.all = map[*Progress]struct{}{}
	}
	progressReg.all[p] = struct{}{}
	progressReg.Unlock()
	return p
}

// Done removes the copy from the registry. p may be nil.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	progressReg.Lock()
	delete(progressReg.all, p)
	progressReg.Unlock()
}

// SetPhase records the copy's phase. p may be nil.
func (p *Progress) SetPhase(phase string) {
	if p != nil {
		p.phase.Store(&phase)
	}
}

// SetPID records the backend that waits for the copy. p may be nil.
func (p *Progress) SetPID(pid int) {
	if p != nil && pid != 0 {
		p.pid.Store(int32(pid))
	}
}

// restart resets the figures of a copy that starts over.
func (p *Progress) restart() {
	if p == nil {
		return
	}
	p.rows.Store(0)
	p.bytes.Store(0)
	p.SetPhase(PhaseStarting)
}

// ProgressInfo is a copy's figures at one moment.
type ProgressInfo struct {
	PID           int       `json:"pid,omitempty"`
	Database      string    `json:"database"`
	Namespace     string    `json:"schema_name"`
	Table         string    `json:"table_name"`
	Source        string    `json:"source"`
	ForeignOID    uint32    `json:"foreign_table_oid,omitempty"`
	Command       string    `json:"command"`
	Phase         string    `json:"phase"`
	RowsCopied    int64     `json:"rows_copied"`
	RowsEstimated *int64    `json:"rows_estimated"`
	Bytes         int64     `json:"bytes_copied"`
	StartedAt     time.Time `json:"started_at"`
}

// Info reads the copy's figures.
func (p *Progress) Info() ProgressInfo {
	i := ProgressInfo{
		PID: int(p.pid.Load()), Database: p.Database, Namespace: p.Namespace, Table: p.Table,
		Source: p.Source, ForeignOID: p.ForeignOID, Command: p.Command, Phase: *p.phase.Load(),
		RowsCopied: p.rows.Load(), Bytes: p.bytes.Load(), StartedAt: p.StartedAt,
	}
	if e := p.estimated.Load(); e >= 0 {
		i.RowsEstimated = &e
	}
	if i.Command == CommandResync && i.PID != 0 {
		i.Command = CommandResyncTable // a backend waits for it
	}
	return i
}

// Progresses lists the copies under way, oldest first.
func Progresses() []ProgressInfo {
	progressReg.Lock()
	out := make([]ProgressInfo, 0, len(progressReg.all))
	for p := range progressReg.all {
		out = append(out, p.Info())
	}
	progressReg.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].StartedAt.Before(out[b].StartedAt) })
	return out
}

// FindProgress is the copy under way of a database's mirror, or nil.
func FindProgress(database, namespace, table string) *Progress {
	progressReg.Lock()
	defer progressReg.Unlock()
	for p := range progressReg.all {
		if p.Database == database && p.Namespace == namespace && p.Table == table {
			return p
		}
	}
	return nil
}

type progressKey struct{}

// WithProgress makes the copies made with ctx count into p.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	if p == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, p)
}

func progressOf(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}

// estimate records the planner's estimate of the rows a copy of from
// reads: reltuples scaled to the table's current size, so a table never
// analyzed has one too.
func (p *Progress) estimate(ctx context.Context, conn *pgx.Conn, from string) {
	if p == nil {
		return
	}
	// In a savepoint: a failure must not abort the copy's transaction.
	if _, err := conn.Exec(ctx, "SAVEPOINT mooncake_estimate"); err != nil {
		return
	}
	var plan []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT"+from).Scan(&plan); err != nil {
		conn.Exec(ctx, "ROLLBACK TO SAVEPOINT mooncake_estimate")
		return
	}
	conn.Exec(ctx, "RELEASE SAVEPOINT mooncake_estimate")
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if json.Unmarshal(plan, &out) == nil && len(out) == 1 {
		p.estimated.Store(int64(out[0].Plan.Rows))
	}
}
