package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engineconfig"
)

const enginesAbout = `List the engines a server would offer: the built-in sim engine plus the
entries of the engines file (--engines, env JOBSTREAM_ENGINES). Secrets are
never shown: an entry only names the environment variable holding its key.
The file is validated; a missing key variable is reported.`

func cmdEngines(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "engines", "[--engines FILE] [--json]", enginesAbout)
	path := fs.String("engines", e.getenv("JOBSTREAM_ENGINES"), "engines file (env JOBSTREAM_ENGINES)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("engines takes no arguments")
	}
	infos := engineconfig.Default().List()
	// A file that parses is listed even when its key variables are unset;
	// that problem (which stops serve) is reported after the listing.
	var buildErr error
	if *path != "" {
		f, err := engineconfig.Read(*path)
		if err != nil {
			return err
		}
		_, buildErr = f.Build(e.getenv, engineconfig.Hooks{})
		reg := engine.NewRegistry()
		for _, i := range infos {
			reg.Register(i, nil)
		}
		for _, i := range f.Infos() {
			reg.Register(i, nil)
		}
		infos = reg.List()
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"engines": infos}); err != nil {
			return err
		}
		return buildErr
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROVIDER\tMODEL\tBASE URL")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.ID, i.Provider, i.Model, i.BaseURL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return buildErr
}
