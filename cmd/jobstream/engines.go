package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engineconfig"
)

const enginesAbout = `List the engines a server would offer: the built-in sim engine plus the
entries of the engines file (--engines, env JOBSTREAM_ENGINES). Secrets are
never shown: an entry only names the environment variable holding its key.
The file is validated; a missing key variable is reported.

With --url, list the engines a running server offers (GET /v1/engines), with
the key from JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY as for 'ask'.`

func cmdEngines(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "engines", "[--engines FILE | --url URL] [--json]", enginesAbout)
	path := fs.String("engines", e.getenv("JOBSTREAM_ENGINES"), "engines file (env JOBSTREAM_ENGINES)")
	serverURL := fs.String("url", "", "list a running server's engines instead, e.g. http://localhost:8080")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("engines takes no arguments")
	}
	var infos []engine.Info
	var buildErr error
	if *serverURL != "" {
		c := &client.Client{BaseURL: *serverURL, AccessKey: e.getenv("JOBSTREAM_ACCESS_KEY"), SecretKey: e.getenv("JOBSTREAM_SECRET_KEY")}
		if err := checkKey(c); err != nil {
			return err
		}
		if infos, err = c.Engines(ctx); err != nil {
			return explain(ctx, c, err)
		}
		return printEngines(e, infos, *asJSON, nil)
	}
	infos = engineconfig.Default().List()
	// A file that parses is listed even when its key variables are unset;
	// that problem (which stops serve) is reported after the listing.
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
	return printEngines(e, infos, *asJSON, buildErr)
}

func printEngines(e *env, infos []engine.Info, asJSON bool, buildErr error) error {
	if asJSON {
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
