package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

const logAbout = `The transparency log's keys (internal/ledger/README.md).

  log keygen --out FILE [--name NAME]

writes a new Ed25519 signer key to FILE (mode 0600; never into the
database) and prints its verifier key, which auditors and witnesses keep.
NAME is the log's name, the first line of every checkpoint: by convention
your host and a path, such as example.com/jobstream. Serve with
--log-key FILE (or JOBSTREAM_LOG_KEY) to sign checkpoints.`

func cmdLog(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "log", "keygen --out FILE --name NAME", logAbout)
	out := fs.String("out", "", "file to write the signer key to (must not exist)")
	name := fs.String("name", "", "the log's name, the checkpoints' origin line (example.com/jobstream)")
	if len(args) > 0 && args[0] == "keygen" {
		args = args[1:]
	} else if len(args) == 0 || (args[0] != "-h" && args[0] != "-help" && args[0] != "--help") {
		return usagef("log needs a subcommand: keygen (run 'jobstream log --help')")
	}
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 || *out == "" || *name == "" {
		return usagef("log keygen needs --out FILE and --name NAME, and no arguments")
	}
	signer, verifier, err := ledger.GenerateKey(*name)
	if err != nil {
		return usagef("--name %q: %v (a name has no spaces and no '+')", *name, err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("log keygen: %w", err)
	}
	if _, err := f.WriteString(signer + "\n"); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("log keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(*out)
		return fmt.Errorf("log keygen: %w", err)
	}
	fmt.Fprintln(e.stdout, verifier)
	return nil
}

const auditAbout = `Check the whole database against a checkpoint of its transparency log kept
outside it (internal/ledger/README.md, "How an auditor works"):

  - the checkpoint's signature, with the verifier key K (the text, or a file
    holding it);
  - that the database's leaves hash to the checkpoint's root (the tree is
    rebuilt from the leaves; the stored hashes are not trusted), and that it
    extends --previous, an earlier checkpoint the auditor kept;
  - that every logged job still matches its leaf: request hash, tenant,
    engine, status, seal (chunk count and final hash), times, and its
    audit trail up to the event logged; and that its chain verifies;
  - that every logged job gone is justified by a later deleted leaf (its
    days had passed, no hold was open, the seal removed is the one logged);
  - that every erased job is justified by a later erased leaf (no hold was
    open, it kept the request hash, the seal and the chunk hashes logged);
    each is printed as erased by whom, when and why;
  - that every job that ended more than --delay ago has a leaf.

Exit status 0 when all holds, 1 when anything does not: every bad job is
printed with the reason. The database is found as for 'serve'.`

func cmdAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "audit", "--verifier-key K --checkpoint FILE [--previous FILE]", auditAbout)
	key := fs.String("verifier-key", "", "the log's verifier key ('jobstream log keygen' printed it), or a file holding it")
	cpFile := fs.String("checkpoint", "", "the signed checkpoint to check against (- for standard input)")
	prevFile := fs.String("previous", "", "an earlier checkpoint: the log must extend it")
	delay := fs.Duration("delay", time.Minute, "the sequencing delay: jobs that ended longer ago must have a leaf")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 || *key == "" || *cpFile == "" {
		return usagef("audit needs --verifier-key and --checkpoint, and no arguments")
	}
	if *delay < 0 {
		return usagef("--delay must not be negative")
	}
	vkey := *key
	if !strings.Contains(vkey, "+") {
		b, err := os.ReadFile(vkey)
		if err != nil {
			return usagef("--verifier-key is neither a key nor a readable file: %v", err)
		}
		vkey = strings.TrimSpace(string(b))
	}
	read := func(path string) ([]byte, error) {
		if path == "-" {
			return readAllLimited(e.stdin)
		}
		return os.ReadFile(path)
	}
	cp, err := read(*cpFile)
	if err != nil {
		return fmt.Errorf("audit: --checkpoint: %w", err)
	}
	var prev []byte
	if *prevFile != "" {
		if prev, err = read(*prevFile); err != nil {
			return fmt.Errorf("audit: --previous: %w", err)
		}
	}
	pool, err := connect(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := ledger.Audit(ctx, store.New(pool), ledger.AuditConfig{VerifierKey: vkey, Checkpoint: cp, Previous: prev, Delay: *delay})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for _, f := range rep.Erasures {
		fmt.Fprintf(e.stdout, "%s ERASED: %s\n", f.JobID, f.Reason)
	}
	for _, f := range rep.Findings {
		fmt.Fprintln(e.stdout, f)
	}
	fmt.Fprintf(e.stdout, "checkpoint %s size %d; %d leaves in the database (%d past the checkpoint); %d jobs match their leaves (%d erased as logged), %d deleted by retention as logged, %d held\n",
		rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Leaves, rep.Unsigned, rep.Jobs, len(rep.Erasures), rep.Deleted, rep.Held)
	if !rep.OK() {
		fmt.Fprintf(e.stdout, "AUDIT FAILED: %d findings\n", len(rep.Findings))
		return errSilent
	}
	fmt.Fprintln(e.stdout, "audit ok")
	return nil
}

// readAllLimited reads a checkpoint from r: a few hundred bytes, at most 64 KiB.
func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10+1))
	if err == nil && len(b) > 64<<10 {
		return nil, errors.New("more than 64 KiB: not a checkpoint")
	}
	return b, err
}
