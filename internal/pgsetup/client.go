package pgsetup

import (
	"os"
	"path/filepath"
)

// FindClient returns the path of a PostgreSQL client program such as psql:
// the first executable of that name on PATH (absolute entries only) or in
// the directories server packages install to, highest version first; ""
// when there is none.
func FindClient(getenv func(string) string, name string) string {
	var dirs []string
	for _, d := range filepath.SplitList(getenv("PATH")) {
		if filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
	}
	for _, g := range binDirGlobs {
		matches, _ := filepath.Glob(g)
		dirs = append(dirs, byVersionDesc(matches)...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}
