// Package ledger is jobstream's transparency log: a leaf for every sealed
// job and every later change to the record, in an RFC 6962 Merkle tree
// (golang.org/x/mod/sumdb/tlog) kept in PostgreSQL, whose roots are signed
// as C2SP tlog-checkpoints (golang.org/x/mod/sumdb/note) with a key the
// database never holds. An auditor holding a checkpoint checks the whole
// database against it (Audit), a client its job's inclusion (Inclusion).
//
// README.md, beside this file, has the leaf encoding byte for byte and the
// threat model.
package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Version is the leaf encoding's version, its first byte.
const Version = 1

// Leaf kinds.
const (
	KindJob     = "job"
	KindHold    = "hold"
	KindUnhold  = "unhold"
	KindDeleted = "deleted"
	KindErased  = "erased"
	KindPolicy  = "policy"
	KindKey     = "key"
	KindAnalyst = "analyst"
)

// fieldCount is the number of fields after the kind, per kind.
var fieldCount = map[string]int{
	KindJob: 12, KindDeleted: 10, KindErased: 8, KindHold: 5, KindUnhold: 5,
	KindPolicy: 5, KindKey: 5, KindAnalyst: 5,
}

// Fields is a leaf split into its kind and fields (the framing alone).
type Fields struct {
	Kind   string
	Fields [][]byte
}

// Split parses a leaf's framing: the version byte, then length-prefixed
// fields, the first the kind. It checks the version, the kind and the
// number of fields of that kind, and that nothing trails.
func Split(b []byte) (Fields, error) {
	if len(b) == 0 || b[0] != Version {
		return Fields{}, errors.New("not a version 1 leaf")
	}
	var out [][]byte
	for rest := b[1:]; len(rest) > 0; {
		if len(rest) < 4 {
			return Fields{}, errors.New("truncated field length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return Fields{}, errors.New("truncated field")
		}
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	if len(out) == 0 {
		return Fields{}, errors.New("leaf has no kind")
	}
	kind := string(out[0])
	want, ok := fieldCount[kind]
	if !ok {
		return Fields{}, fmt.Errorf("unknown leaf kind %q", kind)
	}
	if len(out)-1 != want {
		return Fields{}, fmt.Errorf("%s leaf has %d fields, want %d", kind, len(out)-1, want)
	}
	return Fields{Kind: kind, Fields: out[1:]}, nil
}

// Job is a job leaf: an ended job as it was sealed.
type Job struct {
	ID            uuid.UUID
	Tenant        string
	Engine        string
	RequestSHA256 []byte
	ChainVersion  int64
	Status        string
	ChunkCount    *int64
	FinalHash     []byte
	CreatedAt     time.Time
	FinishedAt    *time.Time
	// EventCount is the number of events of the job's audit trail when it
	// was logged, EventTip the hash of the last of them (nil when none).
	EventCount int64
	EventTip   []byte
}

// Deleted is a deleted leaf: a job removed by retention, the rule it was
// judged by and the seal of what was removed.
type Deleted struct {
	ID         uuid.UUID
	Tenant     string
	Reason     string
	Policy     string
	KeepDays   int64
	MinDays    int64
	JudgedAt   time.Time
	ChunkCount *int64
	FinalHash  []byte
	EventHash  []byte
}

// Erased is an erased leaf: a job whose content was erased
// (jobstream_erase), what it kept (the request's hash, the seal and the
// SHA-256 of its chunks' hashes in seq order) and when. Never who erased
// it nor why: the erased event, whose hash it carries, has both.
type Erased struct {
	ID            uuid.UUID
	Tenant        string
	RequestSHA256 []byte
	ChunkCount    int64
	FinalHash     []byte
	ChunkHashes   []byte
	At            time.Time
	EventHash     []byte
}

// Hold is a hold or unhold leaf.
type Hold struct {
	Lifted    bool
	ID        uuid.UUID
	Tenant    string
	Authority string
	At        time.Time
	EventHash []byte
}

// Admin is a policy, key or analyst leaf: an admin event's place and hash.
type Admin struct {
	Kind   string
	Event  string
	Tenant string
	Seq    int64
	At     time.Time
	Hash   []byte
}

// Decode parses a leaf into a *Job, *Deleted, *Erased, *Hold or *Admin.
func Decode(b []byte) (any, error) {
	f, err := Split(b)
	if err != nil {
		return nil, err
	}
	d := decoder{f: f.Fields}
	switch f.Kind {
	case KindJob:
		j := &Job{ID: d.uuid(0), Tenant: d.text(1), Engine: d.text(2), RequestSHA256: d.hash(3, false),
			ChainVersion: d.int(4), Status: d.text(5), ChunkCount: d.intOpt(6), FinalHash: d.hash(7, true),
			CreatedAt: d.time(8), FinishedAt: d.timeOpt(9), EventCount: d.int(10), EventTip: d.hash(11, true)}
		return j, d.err
	case KindDeleted:
		x := &Deleted{ID: d.uuid(0), Tenant: d.text(1), Reason: d.text(2), Policy: d.text(3), KeepDays: d.int(4),
			MinDays: d.int(5), JudgedAt: d.time(6), ChunkCount: d.intOpt(7), FinalHash: d.hash(8, true), EventHash: d.hash(9, false)}
		return x, d.err
	case KindErased:
		x := &Erased{ID: d.uuid(0), Tenant: d.text(1), RequestSHA256: d.hash(2, false), ChunkCount: d.int(3),
			FinalHash: d.hash(4, false), ChunkHashes: d.hash(5, false), At: d.time(6), EventHash: d.hash(7, false)}
		return x, d.err
	case KindHold, KindUnhold:
		h := &Hold{Lifted: f.Kind == KindUnhold, ID: d.uuid(0), Tenant: d.text(1), Authority: d.text(2), At: d.time(3), EventHash: d.hash(4, false)}
		return h, d.err
	default:
		a := &Admin{Kind: f.Kind, Event: d.text(0), Tenant: d.text(1), Seq: d.int(2), At: d.time(3), Hash: d.hash(4, false)}
		return a, d.err
	}
}

type decoder struct {
	f   [][]byte
	err error
}

func (d *decoder) fail(i int, what string) {
	if d.err == nil {
		d.err = fmt.Errorf("field %d: %s", i+1, what)
	}
}

func (d *decoder) uuid(i int) uuid.UUID {
	var u uuid.UUID
	if len(d.f[i]) != 16 {
		d.fail(i, "not a 16-byte id")
		return u
	}
	copy(u[:], d.f[i])
	return u
}

func (d *decoder) text(i int) string {
	if !utf8.Valid(d.f[i]) || bytes.IndexByte(d.f[i], 0) >= 0 {
		d.fail(i, "not UTF-8 text")
	}
	return string(d.f[i])
}

func (d *decoder) intOpt(i int) *int64 {
	switch len(d.f[i]) {
	case 0:
		return nil
	case 8:
		v := int64(binary.BigEndian.Uint64(d.f[i]))
		return &v
	}
	d.fail(i, "not an 8-byte integer")
	return nil
}

func (d *decoder) int(i int) int64 {
	v := d.intOpt(i)
	if v == nil {
		d.fail(i, "missing integer")
		return 0
	}
	return *v
}

func (d *decoder) timeOpt(i int) *time.Time {
	v := d.intOpt(i)
	if v == nil {
		return nil
	}
	t := time.UnixMicro(*v).UTC()
	return &t
}

func (d *decoder) time(i int) time.Time {
	t := d.timeOpt(i)
	if t == nil {
		d.fail(i, "missing time")
		return time.Time{}
	}
	return *t
}

func (d *decoder) hash(i int, optional bool) []byte {
	switch {
	case len(d.f[i]) == 32:
		return d.f[i]
	case len(d.f[i]) == 0 && optional:
		return nil
	}
	d.fail(i, "not a 32-byte hash")
	return nil
}

// encoder writes the version 1 framing; the database writes leaves with
// the same framing (jobstream_log_field and friends in
// migrations/00050_log.sql), and a test holds the two to the same bytes.
type encoder struct{ b []byte }

func (e *encoder) field(b []byte) {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(b)))
	e.b = append(e.b, b...)
}
func (e *encoder) text(s string) { e.field([]byte(s)) }
func (e *encoder) intOpt(v *int64) {
	if v == nil {
		e.field(nil)
		return
	}
	e.field(binary.BigEndian.AppendUint64(nil, uint64(*v)))
}
func (e *encoder) int(v int64) { e.intOpt(&v) }
func (e *encoder) timeOpt(t *time.Time) {
	if t == nil {
		e.field(nil)
		return
	}
	e.int(t.UnixMicro())
}

// Encode is the job leaf's bytes: what
// the view jobstream_log_job_leaves holds for this job.
func (j *Job) Encode() []byte {
	e := encoder{b: []byte{Version}}
	e.text(KindJob)
	e.field(j.ID[:])
	e.text(j.Tenant)
	e.text(j.Engine)
	e.field(j.RequestSHA256)
	e.int(j.ChainVersion)
	e.text(j.Status)
	e.intOpt(j.ChunkCount)
	e.field(j.FinalHash)
	e.timeOpt(&j.CreatedAt)
	e.timeOpt(j.FinishedAt)
	e.int(j.EventCount)
	e.field(j.EventTip)
	return e.b
}
